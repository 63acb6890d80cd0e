// Input checks shared by every EntityStore operation. Each failure is `invalid` with a message
// that starts with the field ("kind: must not be empty") and details {"field":"kind"}.
#pragma once

#include <string>
#include <string_view>

#include <shardkit/message/status.h>

namespace shardkit::store::internal {

// Kinds and ids are non-empty and NUL-free (NUL ends the kind in the key layout).
Status CheckKind(std::string_view kind);
Status CheckId(std::string_view id, std::string_view field = "id");

}  // namespace shardkit::store::internal
