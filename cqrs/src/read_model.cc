// Read-model helpers for projections (read_model.h).
#include "shardkit/cqrs/read_model.h"

#include <algorithm>
#include <cstdlib>

#include <shardkit/message/json.h>

namespace shardkit::cqrs {
namespace {

// The new value of the counter at `key` after adding `delta` (a delete at zero).
Result<Write> Count(const StateView& state, std::string key, int64_t delta) {
  auto current = state.Get(key);
  if (!current.ok()) return std::move(current).status();
  int64_t n = current->has_value() ? std::strtoll((*current)->c_str(), nullptr, 10) : 0;
  n = std::max<int64_t>(0, n + delta);
  if (n == 0) return Write{std::move(key), std::nullopt};
  return Write{std::move(key), std::to_string(n)};
}

}  // namespace

std::string ReadModelKey(std::initializer_list<std::string_view> parts) {
  std::string key;
  for (std::string_view p : parts) {
    if (!key.empty()) key.push_back('\0');
    key.append(p);
  }
  return key;
}

std::optional<std::string> EntityStringField(std::string_view entity_json, std::string_view field) {
  auto doc = ParseJson(entity_json, "ent");
  if (!doc.ok() || !doc->IsObject()) return std::nullopt;
  auto it = doc->FindMember(
      rapidjson::StringRef(field.data(), static_cast<rapidjson::SizeType>(field.size())));
  if (it == doc->MemberEnd() || !it->value.IsString()) return std::nullopt;
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

GroupIndex::GroupIndex(char owner_prefix, char count_prefix, char member_prefix)
    : owner_(1, owner_prefix), count_(1, count_prefix), member_(1, member_prefix) {}

Result<std::vector<Write>> GroupIndex::Move(const StateView& state, const std::string& id,
                                            const std::optional<std::string>& group) const {
  auto old = state.Get(ReadModelKey({owner_, id}));
  if (!old.ok()) return std::move(old).status();
  if (*old == group) return std::vector<Write>{};
  std::vector<Write> writes;
  if (old->has_value()) {
    auto count = Count(state, ReadModelKey({count_, **old}), -1);
    if (!count.ok()) return std::move(count).status();
    writes.push_back(std::move(*count));
    writes.push_back(Write{ReadModelKey({member_, **old, id}), std::nullopt});
  }
  if (group) {
    auto count = Count(state, ReadModelKey({count_, *group}), +1);
    if (!count.ok()) return std::move(count).status();
    writes.push_back(std::move(*count));
    writes.push_back(Write{ReadModelKey({member_, *group, id}), std::string()});
    writes.push_back(Write{ReadModelKey({owner_, id}), *group});
  } else {
    writes.push_back(Write{ReadModelKey({owner_, id}), std::nullopt});
  }
  return writes;
}

Result<uint64_t> GroupIndex::CountOf(const ReadView& view, std::string_view group) const {
  auto v = view.Get(ReadModelKey({count_, group}));
  if (!v.ok()) return std::move(v).status();
  return v->has_value() ? std::strtoull((*v)->c_str(), nullptr, 10) : uint64_t{0};
}

Result<std::vector<std::string>> GroupIndex::Members(const ReadView& view, std::string_view group,
                                                     uint64_t limit) const {
  std::vector<std::string> ids;
  const std::string prefix = ReadModelKey({member_, group, ""});
  Status s = view.Scan(prefix, "", [&](std::string_view key, std::string_view) {
    ids.emplace_back(key.substr(prefix.size()));
    return ids.size() < limit;
  });
  if (!s.ok()) return s;
  return ids;
}

}  // namespace shardkit::cqrs
