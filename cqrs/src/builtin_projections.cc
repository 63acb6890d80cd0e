// The built-in projections: entities, entries per user, search index, follower counts.
#include "shardkit/cqrs/builtin_projections.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <shardkit/message/json.h>

namespace shardkit::cqrs {
namespace {

// "a" "\0" "b" ... : keys whose parts may hold any text but NUL.
std::string Key(std::initializer_list<std::string_view> parts) {
  std::string key;
  for (std::string_view p : parts) {
    if (!key.empty()) key.push_back('\0');
    key.append(p);
  }
  return key;
}

// The top-level string field `field` of an entity; nullopt when absent or not a string.
std::optional<std::string> StringField(std::string_view entity_json, const std::string& field) {
  auto doc = ParseJson(entity_json, "ent");
  if (!doc.ok() || !doc->IsObject()) return std::nullopt;
  auto it = doc->FindMember(rapidjson::StringRef(field.data(), field.size()));
  if (it == doc->MemberEnd() || !it->value.IsString()) return std::nullopt;
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

// The new value of the counter at `key` after adding `delta` (a delete at zero).
Result<Write> Count(const StateView& state, std::string key, int64_t delta) {
  auto current = state.Get(key);
  if (!current.ok()) return std::move(current).status();
  int64_t n = current->has_value() ? std::strtoll((*current)->c_str(), nullptr, 10) : 0;
  n = std::max<int64_t>(0, n + delta);
  if (n == 0) return Write{std::move(key), std::nullopt};
  return Write{std::move(key), std::to_string(n)};
}

Result<uint64_t> OptionalLimit(const Message& m, uint64_t fallback) {
  const Value* v = m.Find("limit");
  if (v == nullptr) return fallback;
  auto n = m.GetUint("limit");
  if (!n || *n == 0 || v->type != ValueType::kNumber)
    return Status::InvalidField("limit", "must be a positive integer");
  return *n;
}

std::string IdsJson(const std::vector<std::string>& ids) {
  std::string out = "[";
  for (const auto& id : ids) {
    if (out.size() > 1) out += ',';
    AppendJsonString(id, out);
  }
  out += ']';
  return out;
}

// Maintains a "one value per entity" relation (entity id -> group) with a counter per group and an
// optional membership list: the shape of entries-per-user and follower counts.
class GroupCounter {
 public:
  GroupCounter(char owner_prefix, char count_prefix, char member_prefix)
      : owner_(1, owner_prefix), count_(1, count_prefix), member_(1, member_prefix) {}

  // Moves entity `id` to `group` (nullopt: to no group).
  Result<std::vector<Write>> Move(const StateView& state, const std::string& id,
                                  const std::optional<std::string>& group) {
    auto old = state.Get(Key({owner_, id}));
    if (!old.ok()) return std::move(old).status();
    if (*old == group) return std::vector<Write>{};
    std::vector<Write> writes;
    if (old->has_value()) {
      auto count = Count(state, Key({count_, **old}), -1);
      if (!count.ok()) return std::move(count).status();
      writes.push_back(std::move(*count));
      writes.push_back(Write{Key({member_, **old, id}), std::nullopt});
    }
    if (group) {
      auto count = Count(state, Key({count_, *group}), +1);
      if (!count.ok()) return std::move(count).status();
      writes.push_back(std::move(*count));
      writes.push_back(Write{Key({member_, *group, id}), std::string()});
      writes.push_back(Write{Key({owner_, id}), *group});
    } else {
      writes.push_back(Write{Key({owner_, id}), std::nullopt});
    }
    return writes;
  }

  Result<uint64_t> CountOf(const ReadView& view, std::string_view group) const {
    auto v = view.Get(Key({count_, group}));
    if (!v.ok()) return std::move(v).status();
    return v->has_value() ? std::strtoull((*v)->c_str(), nullptr, 10) : uint64_t{0};
  }

  Result<std::vector<std::string>> Members(const ReadView& view, std::string_view group,
                                           uint64_t limit) const {
    std::vector<std::string> ids;
    const std::string prefix = Key({member_, group, ""});
    Status s = view.Scan(prefix, "", [&](std::string_view key, std::string_view) {
      ids.emplace_back(key.substr(prefix.size()));
      return ids.size() < limit;
    });
    if (!s.ok()) return s;
    return ids;
  }

 private:
  std::string owner_, count_, member_;
};

class EntitiesProjection final : public Projection {
 public:
  explicit EntitiesProjection(std::string kind) : kind_(std::move(kind)) {}
  std::string name() const override { return "entities:" + kind_; }

  Result<std::vector<Write>> Apply(const Event& e, const StateView&) override {
    if (e.kind != kind_ || e.op == EventOp::kOther) return std::vector<Write>{};
    if (e.op == EventOp::kSave) return std::vector<Write>{{Key({"e", e.id}), e.value}};
    return std::vector<Write>{{Key({"e", e.id}), std::nullopt}};
  }

  Result<Message> Query(const Message& m, const ReadView& view) override {
    auto kind = m.GetString("kind");
    if (!kind || *kind != kind_)
      return Status::InvalidField("kind", fmt::format("this read model holds '{}'", kind_));
    auto op = m.GetString("store");
    if (op && *op == "load") return Load(m, view);
    if (op && *op == "list") return List(m, view);
    return Status::InvalidField("store", "read models answer load and list");
  }

 private:
  Result<Message> Load(const Message& m, const ReadView& view) {
    auto id = m.GetString("id");
    if (!id || id->empty()) return Status::InvalidField("id", "must be a non-empty string");
    auto value = view.Get(Key({"e", *id}));
    if (!value.ok()) return std::move(value).status();
    if (!value->has_value()) return Status::NotFound(fmt::format("{} '{}' not found", kind_, *id));
    Message out;
    out.SetObjectJson("ent", **value);
    return out;
  }

  Result<Message> List(const Message& m, const ReadView& view) {
    std::vector<std::pair<std::string, std::string>> filters;  // field -> compact JSON
    uint64_t limit = UINT64_MAX;
    std::string cursor;
    if (const Value* q = m.Find("q")) {
      if (q->type != ValueType::kObject) return Status::InvalidField("q", "must be an object");
      auto doc = ParseJson(q->text, "q");
      if (!doc.ok()) return std::move(doc).status();
      for (const auto& member : doc->GetObject()) {
        std::string field(member.name.GetString(), member.name.GetStringLength());
        if (field == "limit$") {
          if (!member.value.IsUint64())
            return Status::InvalidField("q.limit$", "must be a non-negative integer");
          limit = member.value.GetUint64();
        } else if (field == "cursor$") {
          if (!member.value.IsString())
            return Status::InvalidField("q.cursor$", "must be a string");
          cursor = member.value.GetString();
        } else if (!field.empty() && field.back() == '$') {
          return Status::InvalidField("q." + field,
                                      "not supported by read models (limit$ and cursor$ are)");
        } else if (member.value.IsObject() || member.value.IsArray()) {
          return Status::InvalidField("q." + field, "must be a scalar");
        } else {
          filters.emplace_back(std::move(field), ToJsonText(member.value));
        }
      }
    }
    std::string items = "[";
    size_t count = 0;
    std::string last_id, next_cursor;
    const std::string prefix = Key({"e", ""});
    Status s =
        view.Scan(prefix, cursor.empty() ? "" : Key({"e", cursor}),
                  [&](std::string_view key, std::string_view value) {
                    if (!filters.empty()) {
                      auto doc = ParseJson(value, "ent");
                      if (!doc.ok() || !doc->IsObject()) return true;
                      for (const auto& [field, json] : filters) {
                        auto it = doc->FindMember(rapidjson::StringRef(field.data(), field.size()));
                        if (it == doc->MemberEnd() || ToJsonText(it->value) != json) return true;
                      }
                    }
                    if (count == limit) {
                      next_cursor = last_id;
                      return false;
                    }
                    if (count++) items += ',';
                    items.append(value);
                    last_id.assign(key.substr(prefix.size()));
                    return true;
                  });
    if (!s.ok()) return s;
    items += ']';
    Message out;
    out.SetArrayJson("items", items);
    if (!next_cursor.empty()) out.SetString("cursor", next_cursor);
    return out;
  }

  const std::string kind_;
};

class EntriesPerUserProjection final : public Projection {
 public:
  EntriesPerUserProjection(std::string kind, std::string user_field)
      : kind_(std::move(kind)), user_field_(std::move(user_field)) {}
  std::string name() const override { return "entries_per_user:" + kind_; }

  Result<std::vector<Write>> Apply(const Event& e, const StateView& state) override {
    if (e.kind != kind_ || e.op == EventOp::kOther) return std::vector<Write>{};
    std::optional<std::string> user;
    if (e.op == EventOp::kSave) user = StringField(e.value, user_field_);
    return groups_.Move(state, e.id, user);
  }

  Result<Message> Query(const Message& m, const ReadView& view) override {
    auto user = m.GetString("user");
    if (!user) return Status::InvalidField("user", "must be a string");
    auto limit = OptionalLimit(m, 1000);
    if (!limit.ok()) return std::move(limit).status();
    auto count = groups_.CountOf(view, *user);
    if (!count.ok()) return std::move(count).status();
    auto ids = groups_.Members(view, *user, *limit);
    if (!ids.ok()) return std::move(ids).status();
    Message out;
    out.SetString("user", *user);
    out.SetUint("count", *count);
    out.SetArrayJson("ids", IdsJson(*ids));
    return out;
  }

 private:
  const std::string kind_, user_field_;
  GroupCounter groups_{'x', 'n', 'u'};
};

class FollowerCountProjection final : public Projection {
 public:
  FollowerCountProjection(std::string kind, std::string follower_field, std::string followee_field)
      : kind_(std::move(kind)),
        follower_field_(std::move(follower_field)),
        followee_field_(std::move(followee_field)) {}
  std::string name() const override { return "follower_count:" + kind_; }

  Result<std::vector<Write>> Apply(const Event& e, const StateView& state) override {
    if (e.kind != kind_ || e.op == EventOp::kOther) return std::vector<Write>{};
    std::optional<std::string> followee;
    if (e.op == EventOp::kSave && StringField(e.value, follower_field_))
      followee = StringField(e.value, followee_field_);
    return groups_.Move(state, e.id, followee);
  }

  Result<Message> Query(const Message& m, const ReadView& view) override {
    auto user = m.GetString("user");
    if (!user) return Status::InvalidField("user", "must be a string");
    auto count = groups_.CountOf(view, *user);
    if (!count.ok()) return std::move(count).status();
    Message out;
    out.SetString("user", *user);
    out.SetUint("followers", *count);
    return out;
  }

 private:
  const std::string kind_, follower_field_, followee_field_;
  GroupCounter groups_{'f', 'c', 'm'};
};

std::set<std::string> Words(std::string_view text) {
  std::set<std::string> words;
  std::string word;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || u >= 0x80) {
      word.push_back(static_cast<char>(u < 0x80 ? std::tolower(u) : u));
    } else if (!word.empty()) {
      words.insert(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.insert(std::move(word));
  return words;
}

class SearchIndexProjection final : public Projection {
 public:
  SearchIndexProjection(std::string kind, std::string text_field)
      : kind_(std::move(kind)), text_field_(std::move(text_field)) {}
  std::string name() const override { return "search:" + kind_; }

  Result<std::vector<Write>> Apply(const Event& e, const StateView& state) override {
    if (e.kind != kind_ || e.op == EventOp::kOther) return std::vector<Write>{};
    std::set<std::string> now;
    if (e.op == EventOp::kSave) {
      if (auto text = StringField(e.value, text_field_)) now = Words(*text);
    }
    auto old_text = state.Get(Key({"d", e.id}));
    if (!old_text.ok()) return std::move(old_text).status();
    std::set<std::string> before =
        old_text->has_value() ? Words(**old_text) : std::set<std::string>{};
    std::vector<Write> writes;
    for (const auto& w : before) {
      if (!now.count(w)) writes.push_back({Key({"w", w, e.id}), std::nullopt});
    }
    std::string joined;
    for (const auto& w : now) {
      if (!before.count(w)) writes.push_back({Key({"w", w, e.id}), std::string()});
      if (!joined.empty()) joined += ' ';
      joined += w;
    }
    if (joined.empty()) {
      writes.push_back({Key({"d", e.id}), std::nullopt});
    } else if (!old_text->has_value() || **old_text != joined) {
      writes.push_back({Key({"d", e.id}), joined});
    }
    return writes;
  }

  Result<Message> Query(const Message& m, const ReadView& view) override {
    auto text = m.GetString("text");
    if (!text) return Status::InvalidField("text", "must be a string");
    std::set<std::string> words = Words(*text);
    if (words.empty()) return Status::InvalidField("text", "has no words");
    auto limit = OptionalLimit(m, 100);
    if (!limit.ok()) return std::move(limit).status();
    std::vector<std::string> ids;
    const std::string& first = *words.begin();
    const std::string prefix = Key({"w", first, ""});
    Status error;
    Status s = view.Scan(prefix, "", [&](std::string_view key, std::string_view) {
      std::string id(key.substr(prefix.size()));
      for (const auto& w : words) {
        if (w == first) continue;
        auto hit = view.Get(Key({"w", w, id}));
        if (!hit.ok()) {
          error = hit.status();
          return false;
        }
        if (!hit->has_value()) return true;
      }
      ids.push_back(std::move(id));
      return ids.size() < *limit;
    });
    if (!s.ok()) return s;
    if (!error.ok()) return error;
    Message out;
    out.SetArrayJson("ids", IdsJson(ids));
    return out;
  }

 private:
  const std::string kind_, text_field_;
};

}  // namespace

std::unique_ptr<Projection> MakeEntitiesProjection(std::string kind) {
  return std::make_unique<EntitiesProjection>(std::move(kind));
}
std::unique_ptr<Projection> MakeEntriesPerUserProjection(std::string kind, std::string user_field) {
  return std::make_unique<EntriesPerUserProjection>(std::move(kind), std::move(user_field));
}
std::unique_ptr<Projection> MakeSearchIndexProjection(std::string kind, std::string text_field) {
  return std::make_unique<SearchIndexProjection>(std::move(kind), std::move(text_field));
}
std::unique_ptr<Projection> MakeFollowerCountProjection(std::string kind,
                                                        std::string follower_field,
                                                        std::string followee_field) {
  return std::make_unique<FollowerCountProjection>(std::move(kind), std::move(follower_field),
                                                   std::move(followee_field));
}

}  // namespace shardkit::cqrs
