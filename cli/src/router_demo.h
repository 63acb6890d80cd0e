// `shardkit demo --routing`: a walk through pattern routing on an in-process bus.
#pragma once

namespace shardkit::cli {

// Prints each step and its replies on stdout; returns 0.
int RunRouterDemo();

}  // namespace shardkit::cli
