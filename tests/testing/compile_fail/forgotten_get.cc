// Must not compile: a PendingReply matched without .get() (tests/testing/CMakeLists.txt checks
// that the compiler's message says what to write instead).
#include <shardkit/testing/testing.h>

void ForgottenGet(shardkit::Bus& bus) {
  using namespace shardkit::testing;
  PendingReply pending = Send(bus, Msg("store:load"));
  EXPECT_THAT(pending, IsOkReply());
}
