// Helpers for writing a projection (projection.h) over its key-value read model: keys made of
// parts, a top-level field of an entity, and a group index.
//
// Thread-safety: GroupIndex is immutable after construction; its methods may run concurrently
// (Move from the runner thread, CountOf and Members from queries).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/cqrs/projection.h>

namespace shardkit::cqrs {

// "a" NUL "b" NUL …: a read-model key whose parts may hold any text but NUL.
std::string ReadModelKey(std::initializer_list<std::string_view> parts);

// The top-level string field `field` of an entity (JSON object text); nullopt when the field is
// absent or not a string, or the entity is not an object.
std::optional<std::string> EntityStringField(std::string_view entity_json, std::string_view field);

// Each entity in at most one group, with a count per group and the group's members: the shape of
// "entries per user" or "followers per user". Three one-byte key prefixes keep it apart from the
// projection's other keys:
//   owner  NUL id              -> the entity's group
//   count  NUL group           -> the number of entities in it (decimal; absent when 0)
//   member NUL group NUL id    -> ""
class GroupIndex {
 public:
  GroupIndex(char owner_prefix, char count_prefix, char member_prefix);

  // The writes that move entity `id` into `group` (nullopt: out of any group); none when it is
  // there already.
  Result<std::vector<Write>> Move(const StateView& state, const std::string& id,
                                  const std::optional<std::string>& group) const;
  // How many entities `group` holds.
  Result<uint64_t> CountOf(const ReadView& view, std::string_view group) const;
  // Up to `limit` ids of `group`'s entities, in byte order.
  Result<std::vector<std::string>> Members(const ReadView& view, std::string_view group,
                                           uint64_t limit) const;

 private:
  std::string owner_, count_, member_;
};

}  // namespace shardkit::cqrs
