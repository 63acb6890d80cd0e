// The entities projection: a copy of the entities of one kind (entities_projection.h).
#include "shardkit/cqrs/entities_projection.h"

#include <fmt/format.h>
#include <shardkit/message/json.h>
#include <shardkit/store/query.h>

#include "shardkit/cqrs/read_model.h"

namespace shardkit::cqrs {
namespace {

class EntitiesProjection final : public Projection {
 public:
  explicit EntitiesProjection(std::string kind) : kind_(std::move(kind)) {}
  std::string name() const override { return "entities:" + kind_; }

  Result<std::vector<Write>> Apply(const Event& e, const StateView&) override {
    if (e.kind != kind_ || e.op == EventOp::kOther) return std::vector<Write>{};
    if (e.op == EventOp::kSave) return std::vector<Write>{{ReadModelKey({"e", e.id}), e.value}};
    return std::vector<Write>{{ReadModelKey({"e", e.id}), std::nullopt}};
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
    auto value = view.Get(ReadModelKey({"e", *id}));
    if (!value.ok()) return std::move(value).status();
    if (!value->has_value()) return Status::NotFound(fmt::format("{} '{}' not found", kind_, *id));
    Message out;
    out.SetObjectJson("ent", **value);
    return out;
  }

  Result<Message> List(const Message& m, const ReadView& view) {
    std::vector<std::pair<std::string, std::string>> filters;  // field -> compact JSON
    uint64_t limit = store::kDefaultListLimit;                 // as a store: one page unless asked
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
    const std::string prefix = ReadModelKey({"e", ""});
    Status s =
        view.Scan(prefix, cursor.empty() ? "" : ReadModelKey({"e", cursor}),
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

}  // namespace

std::unique_ptr<Projection> MakeEntitiesProjection(std::string kind) {
  return std::make_unique<EntitiesProjection>(std::move(kind));
}

}  // namespace shardkit::cqrs
