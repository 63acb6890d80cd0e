#include "shardkit/store/list_order.h"

#include <fmt/format.h>

#include "cursor.h"
#include "entity_json.h"
#include "list_query.h"
#include "save_plan.h"
#include "sort_value.h"

namespace shardkit::store {

class ListOrder::Key {
 public:
  internal::CursorPosition position;
};

struct ListOrder::Plan {
  internal::QueryPlan query;
  StoreOptions options;  // only shard_key_fields is used, to compute ksids as stores do
};

ListOrder::ListOrder(std::unique_ptr<Plan> plan) : plan_(std::move(plan)) {}
ListOrder::~ListOrder() = default;
ListOrder::ListOrder(ListOrder&&) noexcept = default;
ListOrder& ListOrder::operator=(ListOrder&&) noexcept = default;

Result<ListOrder> ListOrder::Make(const Query& query, std::string shard_key_field) {
  auto planned = internal::PlanQuery(query);
  if (!planned.ok()) return planned.status();
  auto plan = std::make_unique<Plan>();
  plan->query = std::move(planned).value();
  if (shard_key_field != "id")
    plan->options.shard_key_fields[query.kind] = std::move(shard_key_field);
  return ListOrder(std::move(plan));
}

Result<std::shared_ptr<const ListOrder::Key>> ListOrder::KeyOf(std::string_view entity_json) const {
  rapidjson::Document doc;
  doc.Parse(entity_json.data(), entity_json.size());
  if (doc.HasParseError() || !doc.IsObject())
    return Status::Internal("list item is not a JSON object");
  auto id_it = doc.FindMember("id");
  if (id_it == doc.MemberEnd() || !id_it->value.IsString())
    return Status::Internal("list item has no string id");
  std::string id(id_it->value.GetString(), id_it->value.GetStringLength());
  auto ksid = internal::EntityKsid(plan_->options, plan_->query.kind, id, doc);
  if (!ksid.ok()) return ksid.status();
  auto key = std::make_shared<Key>();
  key->position.ksid = *ksid;
  key->position.id = std::move(id);
  if (!plan_->query.sort_field.empty()) {
    auto field = doc.FindMember(plan_->query.sort_field.c_str());
    key->position.sort_value =
        internal::SortValue::From(field == doc.MemberEnd() ? nullptr : &field->value);
  }
  return std::shared_ptr<const Key>(std::move(key));
}

int ListOrder::Compare(const Key& a, const Key& b) const {
  int c = 0;
  if (a.position.sort_value && b.position.sort_value) {
    c = internal::Compare(*a.position.sort_value, *b.position.sort_value);
  }
  if (c == 0 && a.position.ksid != b.position.ksid) c = a.position.ksid < b.position.ksid ? -1 : 1;
  if (c == 0) c = a.position.id.compare(b.position.id);
  if (c != 0) c = c < 0 ? -1 : 1;
  return plan_->query.descending ? -c : c;
}

std::string ListOrder::CursorAfter(const Key& key) const {
  return internal::EncodeCursor(plan_->query.fingerprint, key.position);
}

Result<std::string> ListOrder::Project(std::string_view entity_json) const {
  if (plan_->query.fields.empty()) return std::string(entity_json);
  rapidjson::Document doc;
  doc.Parse(entity_json.data(), entity_json.size());
  if (doc.HasParseError() || !doc.IsObject())
    return Status::Internal("list item is not a JSON object");
  return internal::Project(doc, plan_->query.fields);
}

size_t ListOrder::skip() const { return plan_->query.skip; }
std::optional<size_t> ListOrder::limit() const { return plan_->query.limit; }
bool ListOrder::projects() const { return !plan_->query.fields.empty(); }

}  // namespace shardkit::store
