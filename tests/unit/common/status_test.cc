#include "cairn/common/status.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace cairn {
namespace {

Result<int> Half(int value) {
  if (value % 2 != 0) return InvalidArgumentError(std::to_string(value) + " is odd");
  return value / 2;
}

Result<int> Quarter(int value) {
  CAIRN_ASSIGN_OR_RETURN(int half, Half(value));
  CAIRN_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status CheckEven(int value) {
  CAIRN_RETURN_IF_ERROR(Half(value).status());
  return Status::Ok();
}

TEST(StatusTest, OkByDefault) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.ToString(), "OK");
}

TEST(StatusTest, ToStringNamesTheCodeAndMessage) {
  EXPECT_EQ(NotFoundError("key k1").ToString(), "NotFound: key k1");
  EXPECT_EQ(NotFoundError("key k1").WithContext("range").ToString(), "NotFound: range: key k1");
}

TEST(StatusTest, ErrnoMapsToFittingCodes) {
  EXPECT_EQ(ErrnoError("open", ENOENT).code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoError("write", ENOSPC).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoError("connect", ECONNREFUSED).code(), StatusCode::kUnavailable);
  EXPECT_NE(ErrnoError("open", ENOENT).message().find("No such file"), std::string::npos);
}

TEST(ResultTest, CarriesValueOrError) {
  Result<int> good = Half(8);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 4);
  Result<int> bad = Half(3);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.value_or(-1), -1);
}

TEST(ResultTest, AssignOrReturnPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "3 is odd");
  EXPECT_TRUE(CheckEven(2).ok());
  EXPECT_FALSE(CheckEven(1).ok());
}

TEST(ResultDeathTest, ValueOfAnErrorAborts) {
  Result<int> bad = Half(1);
  EXPECT_DEATH((void)bad.value(), "Result::value\\(\\) on error");
}

}  // namespace
}  // namespace cairn
