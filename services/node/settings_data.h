// Internal: what a Settings holds (a TOML table), shared by settings.cc and config.cc.
#pragma once

#include <toml++/toml.h>

#include "shardkit/services/settings.h"

namespace shardkit::services {

struct Settings::Data {
  toml::table table;
};

}  // namespace shardkit::services
