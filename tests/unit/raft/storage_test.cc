// MemoryStorage: index bookkeeping, compaction and snapshots.
#include "cairn/raft/storage.h"

#include <gtest/gtest.h>

namespace cairn::raft {
namespace {

std::vector<Entry> Entries(uint64_t first, const std::vector<uint64_t>& terms) {
  std::vector<Entry> out;
  for (size_t i = 0; i < terms.size(); ++i) {
    Entry e;
    e.set_index(first + i);
    e.set_term(terms[i]);
    out.push_back(e);
  }
  return out;
}

TEST(MemoryStorageTest, EmptyStorage) {
  MemoryStorage s;
  EXPECT_EQ(*s.FirstIndex(), 1u);
  EXPECT_EQ(*s.LastIndex(), 0u);
  EXPECT_EQ(*s.Term(0), 0u);
  EXPECT_TRUE(IsUnavailable(s.Term(1).status()));
}

TEST(MemoryStorageTest, AppendTruncatesConflictingSuffix) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Entries(1, {1, 1, 2, 2})).ok());
  ASSERT_TRUE(s.Append(Entries(3, {3})).ok());
  EXPECT_EQ(*s.LastIndex(), 3u);
  EXPECT_EQ(*s.Term(3), 3u);
  // A gap is refused with an error, not a crash.
  EXPECT_FALSE(s.Append(Entries(9, {3})).ok());
  EXPECT_FALSE(s.Append({Entries(4, {3})[0], Entries(6, {3})[0]}).ok());
}

TEST(MemoryStorageTest, EntriesRespectsSizeLimitButReturnsAtLeastOne) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Entries(1, {1, 1, 1, 1})).ok());
  EXPECT_EQ(s.Entries(1, 5, UINT64_MAX)->size(), 4u);
  EXPECT_EQ(s.Entries(1, 5, 0)->size(), 1u);
  uint64_t one = Entries(1, {1})[0].ByteSizeLong();
  EXPECT_EQ(s.Entries(1, 5, 2 * one)->size(), 2u);
  EXPECT_TRUE(IsUnavailable(s.Entries(1, 7, 100).status()));
}

TEST(MemoryStorageTest, CompactKeepsTermOfCompactionPoint) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Entries(1, {1, 2, 3, 4, 5})).ok());
  ASSERT_TRUE(s.Compact(3).ok());
  EXPECT_EQ(*s.FirstIndex(), 4u);
  EXPECT_EQ(*s.Term(3), 3u);
  EXPECT_TRUE(IsCompacted(s.Term(2).status()));
  EXPECT_TRUE(IsCompacted(s.Entries(3, 5, 1000).status()));
  EXPECT_TRUE(IsCompacted(s.Compact(2)));
  EXPECT_FALSE(s.Compact(9).ok());
  // Appending below the compaction point skips what is compacted.
  ASSERT_TRUE(s.Append(Entries(2, {2, 3, 4, 6})).ok());
  EXPECT_EQ(*s.LastIndex(), 5u);
  EXPECT_EQ(*s.Term(5), 6u);
}

TEST(MemoryStorageTest, CreateAndApplySnapshot) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Entries(1, {1, 1, 2})).ok());
  ConfState cs;
  cs.add_voters(1);
  auto snap = s.CreateSnapshot(2, &cs, "state");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->metadata().index(), 2u);
  EXPECT_EQ(snap->metadata().term(), 1u);
  EXPECT_TRUE(IsSnapOutOfDate(s.CreateSnapshot(1, &cs, "old").status()));
  EXPECT_FALSE(s.CreateSnapshot(7, &cs, "future").ok());

  MemoryStorage other;
  ASSERT_TRUE(other.ApplySnapshot(*snap).ok());
  EXPECT_EQ(*other.FirstIndex(), 3u);
  EXPECT_EQ(*other.LastIndex(), 2u);
  EXPECT_EQ(other.GetInitialState()->conf_state.voters_size(), 1);
  Snapshot older;
  older.mutable_metadata()->set_index(1);
  EXPECT_TRUE(IsSnapOutOfDate(other.ApplySnapshot(older)));
}

}  // namespace
}  // namespace cairn::raft
