// Helpers shared by the WAL tests.
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/wal/wal.h"

namespace cairn::wal::testing {

inline Entry MakeEntry(uint64_t index, uint64_t term) {
  return Entry{index, term, static_cast<uint32_t>(index % 3),
               "entry-" + std::to_string(index) + "-term-" + std::to_string(term)};
}

// Entries first .. first+count-1, all with `term`.
inline std::vector<Entry> MakeEntries(uint64_t first, uint64_t count, uint64_t term) {
  std::vector<Entry> out;
  for (uint64_t i = 0; i < count; ++i) out.push_back(MakeEntry(first + i, term));
  return out;
}

inline std::vector<uint64_t> Indices(const std::vector<Entry>& entries) {
  std::vector<uint64_t> out;
  for (const Entry& e : entries) out.push_back(e.index);
  return out;
}

// Opens `dir` or fails the test.
inline Opened OpenOrDie(env::Env* env, const std::string& dir, Options options = {}) {
  auto opened = Wal::Open(env, dir, options);
  EXPECT_TRUE(opened.ok()) << opened.status();
  if (!opened.ok()) return Opened{};
  return std::move(opened).value();
}

}  // namespace cairn::wal::testing
