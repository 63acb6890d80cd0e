// Internal to message/: the scan behind Message::Find, inline for the router's lookup, which
// finds two or three names per message, where a call and its frame cost about as much as the scan.
#pragma once

#include <string_view>

#include "same_bytes.h"
#include "shardkit/message/message.h"

namespace shardkit::internal {

[[gnu::always_inline]] inline const Property* FindPropertyIn(const PropertyList& properties,
                                                             std::string_view name) {
  for (const Property& p : properties) {
    if (p.name.size() == name.size() && SameBytes(p.name.data(), name.data(), name.size()))
      return &p;
  }
  return nullptr;
}

}  // namespace shardkit::internal
