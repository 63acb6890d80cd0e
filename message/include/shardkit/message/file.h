// Small files that must survive a crash whole: a migration's journal and spec, a saved shard map.
#pragma once

#include <string>
#include <string_view>

#include "shardkit/message/status.h"

namespace shardkit {

// Writes `text` to `path` so that a crash leaves the old file or the new one: a temp file
// (`path` + ".tmp"), fsynced, renamed over it.
Status WriteFileAtomically(const std::string& path, std::string_view text);

}  // namespace shardkit
