#include "cairn/containers/coord_registry.h"

#include <gtest/gtest.h>

#include "cairn/common/clock.h"
#include "cairn/containers/images.h"
#include "cairn/coord/local_coord_api.h"

namespace cairn::containers {
namespace {

TEST(CoordRegistryTest, GetListCreatePutDeleteOverCoordApi) {
  FakeClock clock;
  coord::LocalCoordApi api(clock);
  CoordRegistry registry(api);
  ASSERT_TRUE(registry.Create("/cairn/images/a", "1").ok());
  EXPECT_EQ(registry.Create("/cairn/images/a", "2").code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(registry.Put("/cairn/images/b", "3").ok());
  ASSERT_TRUE(registry.Put("/cairn/imagesX", "4").ok());
  auto a = registry.Get("/cairn/images/a");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ(**a, "1");
  auto list = registry.List("/cairn/images/");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].second, "3");
  ASSERT_TRUE(registry.Delete("/cairn/images/a").ok());
  EXPECT_FALSE(registry.Get("/cairn/images/a")->has_value());
}

}  // namespace
}  // namespace cairn::containers
