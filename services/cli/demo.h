// `shardkit demo`: the seed's iterations on real nodes built from TOML, in one process.
#pragma once

namespace shardkit::cli {

struct DemoOptions {
  bool quick = false;  // smaller and shorter, for CI
};

// Runs the walk-through; 0 when every step passed with zero client errors.
int RunDemo(const DemoOptions& options);

}  // namespace shardkit::cli
