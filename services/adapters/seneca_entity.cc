// seneca-entity: Seneca's entity messages (sys:entity,cmd:save|load|list|remove|native, sent by
// seneca-entity's save$/load$/list$/remove$) answered over any shardkit store. The adapter sends
// store:* messages through the node, so the store may be local, remote or a shard router over
// many shards, and its rules are Seneca's (seneca_query.h). docs/seneca.md has the mapping.
//
// A reply is {"seneca$": <entity | null | array>}: shardkit replies are objects, and the HTTP
// edge hands a Seneca caller the value itself (services/transport/http.cc).
#include <fmt/format.h>

#include <deque>
#include <map>
#include <mutex>

#include "adapters.h"
#include "seneca_query.h"
#include "shardkit/message/json.h"
#include "shardkit/store/query.h"

namespace shardkit::services {
namespace {

using seneca::Canon;
using JsonDoc = rapidjson::Document;

constexpr int kMaxAttempts = 20;  // read-modify-write rounds lost to other writers

// Orders the requests of each kind as they arrive: a write (save, remove) starts when every
// earlier request of its kind is done, and a read when every earlier write is. So a Seneca app
// that sends a save$ and then a load$ without waiting (an entity that came back over a transport
// saves without a promise) loads what it saved, as it would from Seneca's own stores, and an
// upsert's "find a match, else insert" cannot interleave with another write of the kind.
class KindOrder {
 public:
  using Task = std::function<void(std::function<void()> done)>;
  void Run(const std::string& kind, bool write, Task task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      lanes_[kind].waiting.push_back({write, std::move(task)});
    }
    Dispatch(kind);
  }

 private:
  struct Entry {
    bool write;
    Task task;
  };
  struct Lane {
    std::deque<Entry> waiting;
    int reads = 0;       // running
    bool write = false;  // running
  };

  void Dispatch(const std::string& kind) {
    std::vector<Entry> start;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Lane& lane = lanes_[kind];
      while (!lane.waiting.empty() && !lane.write) {
        Entry& next = lane.waiting.front();
        if (next.write && lane.reads > 0) break;
        if (next.write) {
          lane.write = true;
        } else {
          ++lane.reads;
        }
        start.push_back(std::move(next));
        lane.waiting.pop_front();
      }
      if (lane.waiting.empty() && lane.reads == 0 && !lane.write) lanes_.erase(kind);
    }
    for (Entry& entry : start) {
      entry.task([this, kind, write = entry.write] {
        {
          std::lock_guard<std::mutex> lock(mutex_);
          Lane& lane = lanes_[kind];
          if (write) {
            lane.write = false;
          } else {
            --lane.reads;
          }
        }
        Dispatch(kind);
      });
    }
  }

  std::mutex mutex_;
  std::map<std::string, Lane> lanes_;
};

// One request: what it asks and how to answer.
struct Request {
  Context context;
  ReplyFn reply;
  Canon canon;
  std::string kind;
  JsonDoc ent;  // the entity of a save (an object), else null
  JsonDoc q;    // the query, always an object
};
using RequestPtr = std::shared_ptr<Request>;

// Stored entities found by a query: `list` points into `doc`.
struct Found {
  std::shared_ptr<JsonDoc> doc;
  std::vector<rapidjson::Value*> list;
};
using FoundFn = std::function<void(Result<Found>)>;

Message SenecaReply(std::string json) {
  Message reply;
  if (json == "null") return std::move(reply.SetNull("seneca$"));
  if (json.front() == '[') return std::move(reply.SetArrayJson("seneca$", json));
  return std::move(reply.SetObjectJson("seneca$", std::move(json)));
}

std::string EntityText(rapidjson::Value& stored, const Request& r, seneca::Allocator& allocator) {
  seneca::ToSeneca(stored, r.canon, allocator);
  return ToJsonText(stored);
}

bool IsFalse(const JsonDoc& object, const char* name) {
  auto it = object.FindMember(name);
  return it != object.MemberEnd() && it->value.IsFalse();
}

// The query of a request: an object as it is, an id or a list of ids as {"id": …}, else {}.
JsonDoc QueryOf(const Message& m) {
  JsonDoc q(rapidjson::kObjectType);
  const Value* v = m.Find("q");
  if (v == nullptr) return q;
  auto& allocator = q.GetAllocator();
  if (v->type == ValueType::kString) {
    q.AddMember("id",
                rapidjson::Value(v->text.data(), static_cast<rapidjson::SizeType>(v->text.size()),
                                 allocator),
                allocator);
    return q;
  }
  if (v->type != ValueType::kObject && v->type != ValueType::kArray &&
      v->type != ValueType::kNumber)
    return q;
  auto parsed = ParseJson(v->text, "q");
  if (!parsed.ok()) return q;
  if (parsed->IsObject()) return std::move(parsed).value();
  q.AddMember("id", rapidjson::Value(*parsed, allocator), allocator);
  return q;
}

class SenecaEntityAdapter final : public Handler,
                                  public std::enable_shared_from_this<SenecaEntityAdapter> {
 public:
  explicit SenecaEntityAdapter(bool merge) : merge_(merge) {}

  void Handle(Message m, const Context& context, ReplyFn reply) override {
    auto r = std::make_shared<Request>(Request{context, std::move(reply), {}, {}, {}, {}});
    std::string cmd(m.GetString("cmd").value_or(""));
    if (auto ent = m.GetObjectJson("ent")) {
      auto parsed = ParseJson(*ent, "ent");
      if (!parsed.ok()) return r->reply(parsed.status());
      r->ent = std::move(parsed).value();
    }
    JsonDoc qent;
    if (auto text = m.GetObjectJson("qent")) {
      if (auto parsed = ParseJson(*text, "qent"); parsed.ok()) qent = std::move(parsed).value();
    }
    r->q = QueryOf(m);
    const rapidjson::Value* typed = cmd == "save" || !qent.IsObject() ? &r->ent : &qent;
    r->canon = seneca::CanonOf(typed->IsObject() ? typed : nullptr, m);
    r->kind = r->canon.Kind();
    if (r->canon.name.empty())
      return r->reply(
          Status::InvalidField("name", "no entity type (ent.entity$, qent.entity$ or name)"));
    if (cmd == "native") {
      return r->reply(
          SenecaReply(JsonObject().Add("store", "shardkit").Add("kind", r->kind).str()));
    }
    bool write = cmd == "save" || cmd == "remove";
    if (!write && cmd != "load" && cmd != "list")
      return r->reply(Status::InvalidField("cmd", "must be save, load, list, remove or native"));
    order_.Run(r->kind, write, [self = shared_from_this(), r, cmd](std::function<void()> done) {
      // Holds the adapter (and its order_) until the request is answered.
      r->reply = [self, reply = std::move(r->reply),
                  done = std::move(done)](Result<Message> result) {
        done();
        reply(std::move(result));
      };
      if (cmd == "save") return self->Save(r);
      if (cmd == "load") return self->Load(r);
      if (cmd == "list") return self->List(r);
      self->Remove(r);
    });
  }

 private:
  // --- Queries --------------------------------------------------------------------------------
  // The stored entities of r's kind that match `q`, shaped by its sort$/skip$/limit$/fields$. By
  // id: loads; otherwise a store:list with q's scalar fields as filters, checked again here.
  void Find(const RequestPtr& r, const rapidjson::Value& q, FoundFn done) {
    auto q_copy = std::make_shared<JsonDoc>();
    q_copy->CopyFrom(q, q_copy->GetAllocator());
    auto finish = [q_copy, done = std::move(done)](Result<std::string> items) {
      if (!items.ok()) return done(items.status());
      auto doc = ParseJson(*items, "items");
      if (!doc.ok()) return done(doc.status());
      Found found{std::make_shared<JsonDoc>(std::move(doc).value()), {}};
      for (auto& ent : found.doc->GetArray()) {
        if (seneca::Matches(ent, *q_copy)) found.list.push_back(&ent);
      }
      seneca::Shape(found.list, *q_copy);
      done(std::move(found));
    };
    auto id = q_copy->FindMember("id");
    if (id != q_copy->MemberEnd() && (seneca::IsIdValue(id->value) || id->value.IsArray())) {
      std::vector<std::string> ids;
      if (id->value.IsArray()) {
        for (const auto& v : id->value.GetArray())
          if (seneca::IsIdValue(v)) ids.push_back(seneca::IdText(v));
      } else {
        ids.push_back(seneca::IdText(id->value));
      }
      return LoadEach(r, std::move(ids), 0, "[", std::move(finish));
    }
    Message list;
    list.SetString("store", "list").SetString("kind", r->kind);
    JsonObject filters;
    for (const auto& m : q_copy->GetObject()) {
      std::string_view field(m.name.GetString(), m.name.GetStringLength());
      if (field.find('$') != std::string_view::npos || field == "id" || field == "version")
        continue;
      if (m.value.IsString() || m.value.IsNumber() || m.value.IsBool())
        filters.AddRaw(field, ToJsonText(m.value));
    }
    ListPages(r, std::move(list), filters.str(), "", "[", std::move(finish));
  }

  // Every page of `list` (whose q holds `filters`) from `cursor` on, appended to the array text
  // `items`: Seneca's skip$/limit$/sort$ apply to all matches, and store:list answers a page.
  void ListPages(const RequestPtr& r, Message list, std::string filters, std::string cursor,
                 std::string items, std::function<void(Result<std::string>)> done) {
    auto q = ParseJson(filters, "q");
    if (!q.ok()) return done(q.status());
    auto& alloc = q->GetAllocator();
    q->AddMember("limit$", rapidjson::Value(static_cast<int64_t>(store::kDefaultListLimit)), alloc);
    if (!cursor.empty()) q->AddMember("cursor$", rapidjson::Value(cursor.c_str(), alloc), alloc);
    Message page_request = list;
    page_request.SetObjectJson("q", ToJsonText(*q));
    r->context.Act(std::move(page_request), [self = shared_from_this(), r, list = std::move(list),
                                             filters = std::move(filters), items = std::move(items),
                                             done = std::move(done)](Result<Message> page) mutable {
      if (!page.ok()) return done(page.status());
      std::string_view text = page->GetArrayJson("items").value_or("[]");
      if (text.size() > 2) {
        if (items.size() > 1) items += ',';
        items.append(text.substr(1, text.size() - 2));
      }
      std::string next(page->GetString("cursor").value_or(""));
      if (next.empty()) return done(items + "]");
      self->ListPages(r, std::move(list), std::move(filters), std::move(next), std::move(items),
                      std::move(done));
    });
  }

  // Loads ids[i…] one after another, appending the found ones to the array text `items`.
  void LoadEach(const RequestPtr& r, std::vector<std::string> ids, size_t i, std::string items,
                std::function<void(Result<std::string>)> done) {
    if (i == ids.size()) return done(items + "]");
    Message load;
    load.SetString("store", "load").SetString("kind", r->kind).SetString("id", ids[i]);
    r->context.Act(std::move(load),
                   [self = shared_from_this(), r, ids = std::move(ids), i, items = std::move(items),
                    done = std::move(done)](Result<Message> loaded) mutable {
                     if (loaded.ok()) {
                       if (items.size() > 1) items += ',';
                       items += loaded->GetObjectJson("ent").value_or("{}");
                     } else if (loaded.status().code() != Code::kNotFound) {
                       return done(loaded.status());
                     }
                     self->LoadEach(r, std::move(ids), i + 1, std::move(items), std::move(done));
                   });
  }

  void Load(const RequestPtr& r) {
    Find(r, r->q, [r](Result<Found> found) {
      if (!found.ok()) return r->reply(found.status());
      if (found->list.empty()) return r->reply(SenecaReply("null"));
      r->reply(SenecaReply(EntityText(*found->list[0], *r, found->doc->GetAllocator())));
    });
  }

  void List(const RequestPtr& r) {
    Find(r, r->q, [r](Result<Found> found) {
      if (!found.ok()) return r->reply(found.status());
      std::string array = "[";
      for (rapidjson::Value* ent : found->list) {
        if (array.size() > 1) array += ',';
        array += EntityText(*ent, *r, found->doc->GetAllocator());
      }
      r->reply(SenecaReply(array + "]"));
    });
  }

  // Removes the first match, or every match with all$; answers the removed entity when load$ is
  // true (and all$ is not), else null. An entity removed meanwhile by another is not an error.
  void Remove(const RequestPtr& r) {
    Find(r, r->q, [self = shared_from_this(), r](Result<Found> found) {
      if (!found.ok()) return r->reply(found.status());
      auto all = r->q.FindMember("all$");
      bool remove_all = all != r->q.MemberEnd() && !all->value.IsFalse() && !all->value.IsNull() &&
                        !(all->value.IsNumber() && all->value.GetDouble() == 0);
      auto load = r->q.FindMember("load$");
      bool answer = !remove_all && load != r->q.MemberEnd() && load->value.IsTrue();
      if (!remove_all && found->list.size() > 1) found->list.resize(1);
      self->RemoveEach(r, std::make_shared<Found>(std::move(found).value()), 0, answer);
    });
  }

  void RemoveEach(const RequestPtr& r, std::shared_ptr<Found> found, size_t i, bool answer) {
    if (i == found->list.size()) {
      if (!answer || found->list.empty()) return r->reply(SenecaReply("null"));
      return r->reply(SenecaReply(EntityText(*found->list[0], *r, found->doc->GetAllocator())));
    }
    Message remove;
    remove.SetString("store", "remove")
        .SetString("kind", r->kind)
        .SetString("id", seneca::IdText((*found->list[i])["id"]));
    r->context.Act(std::move(remove),
                   [self = shared_from_this(), r, found, i, answer](Result<Message> removed) {
                     if (!removed.ok() && removed.status().code() != Code::kNotFound)
                       return r->reply(removed.status());
                     self->RemoveEach(r, found, i + 1, answer);
                   });
  }

  // --- Saves ----------------------------------------------------------------------------------
  void Save(const RequestPtr& r) {
    if (!r->ent.IsObject()) return r->reply(Status::InvalidField("ent", "must be an object"));
    bool merge = merge_ && !IsFalse(r->ent, "merge$") && !IsFalse(r->q, "merge$");
    auto data = std::make_shared<JsonDoc>();
    data->CopyFrom(r->ent, data->GetAllocator());
    seneca::ToStored(*data, data->GetAllocator());
    data->RemoveMember("id");  // the id goes to store:save as its own property
    auto id = r->ent.FindMember("id");
    if (id != r->ent.MemberEnd() && !id->value.IsNull()) {  // an update
      std::string text = seneca::IdText(id->value);
      if (merge) return MergeSave(r, data, {}, text, 0, [r](Result<Message> s) { Answer(r, s); });
      return Put(r, *data, text, std::nullopt, [r](Result<Message> s) { Answer(r, s); });
    }
    std::string given_id;
    if (auto v = r->ent.FindMember("id$"); v != r->ent.MemberEnd() && seneca::IsIdValue(v->value))
      given_id = seneca::IdText(v->value);
    if (auto match = UpsertMatch(*r, *data)) {
      return MergeSave(r, data, match, given_id, 0, [r](Result<Message> s) { Answer(r, s); });
    }
    // A new entity: with id$, only if that id is free (Seneca's entity-id-exists).
    Put(r, *data, given_id, given_id.empty() ? std::nullopt : std::optional<int64_t>(0),
        [r](Result<Message> s) { Answer(r, s); });
  }

  // The fields of q.upsert$ (without '$' ones) with the entity's values, when it has them all.
  static std::shared_ptr<JsonDoc> UpsertMatch(const Request& r, const JsonDoc& data) {
    auto upsert = r.q.FindMember("upsert$");
    if (upsert == r.q.MemberEnd() || !upsert->value.IsArray()) return nullptr;
    auto match = std::make_shared<JsonDoc>(rapidjson::kObjectType);
    for (const auto& f : upsert->value.GetArray()) {
      if (!f.IsString() || std::string_view(f.GetString()).find('$') != std::string_view::npos)
        continue;
      std::string field = f.GetString() == std::string_view("version") ? "version$" : f.GetString();
      auto v = data.FindMember(field.c_str());
      if (v == data.MemberEnd()) return nullptr;
      match->AddMember(rapidjson::Value(f.GetString(), match->GetAllocator()),
                       rapidjson::Value(v->value, match->GetAllocator()), match->GetAllocator());
    }
    return match->MemberCount() > 0 ? match : nullptr;
  }

  // Read, merge, write with the read version; again when another writer got there first. The
  // entity to merge into is found by `match` (an upsert) or by `id`; none found: a new entity
  // (with `id` when given).
  void MergeSave(const RequestPtr& r, std::shared_ptr<JsonDoc> data, std::shared_ptr<JsonDoc> match,
                 std::string id, int attempt, ReplyFn done) {
    JsonDoc by_id(rapidjson::kObjectType);
    if (!match)
      by_id.AddMember("id", rapidjson::Value(id.c_str(), by_id.GetAllocator()),
                      by_id.GetAllocator());
    Find(r, match ? static_cast<const rapidjson::Value&>(*match) : by_id,
         [self = shared_from_this(), r, data, match, id, attempt,
          done = std::move(done)](Result<Found> found) mutable {
           if (!found.ok()) return done(found.status());
           JsonDoc merged;
           std::optional<int64_t> version = 0;  // none found: insert only
           std::string target = id;
           if (!found->list.empty()) {
             rapidjson::Value& old = *found->list[0];
             version = old["version"].GetInt64();
             target = seneca::IdText(old["id"]);
             merged.CopyFrom(old, merged.GetAllocator());
             merged.RemoveMember("version");
             merged.RemoveMember("id");
             for (const auto& m : data->GetObject()) {
               merged.RemoveMember(m.name);
               merged.AddMember(rapidjson::Value(m.name, merged.GetAllocator()),
                                rapidjson::Value(m.value, merged.GetAllocator()),
                                merged.GetAllocator());
             }
           } else {
             merged.CopyFrom(*data, merged.GetAllocator());
             if (target.empty()) version = std::nullopt;  // a generated id is always free
           }
           self->Put(r, merged, target, version,
                     [self, r, data, match, id, attempt,
                      done = std::move(done)](Result<Message> saved) mutable {
                       if (!saved.ok() && saved.status().code() == Code::kConflict &&
                           attempt + 1 < kMaxAttempts) {
                         return self->MergeSave(r, data, match, id, attempt + 1, std::move(done));
                       }
                       done(std::move(saved));
                     });
         });
  }

  // store:save of `data` under `id` (generated when empty); `version` 0: only if absent.
  void Put(const RequestPtr& r, const rapidjson::Value& data, const std::string& id,
           std::optional<int64_t> version, ReplyFn done) {
    Message save;
    save.SetString("store", "save")
        .SetString("kind", r->kind)
        .SetObjectJson("ent", ToJsonText(data));
    if (!id.empty()) save.SetString("id", id);
    if (version == 0) {
      save.SetBool("insert_only", true);  // its conflict names the id
    } else if (version) {
      save.SetInt("version", *version);
    }
    r->context.Act(std::move(save), std::move(done));
  }

  // Answers a save with the stored entity.
  static void Answer(const RequestPtr& r, const Result<Message>& saved) {
    if (!saved.ok()) return r->reply(saved.status());
    auto doc = ParseJson(saved->GetObjectJson("ent").value_or("{}"), "ent");
    if (!doc.ok()) return r->reply(doc.status());
    r->reply(SenecaReply(EntityText(*doc, *r, doc->GetAllocator())));
  }

  const bool merge_;
  KindOrder order_;
};

}  // namespace

// seneca-entity: `merge` (default true) is the option of that name of Seneca's stores: false makes
// every update replace the entity; with true, a save's merge$: false does that for the one save.
Result<ServiceInstance> MakeSenecaEntity(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st = s.CheckOnly({"merge"}); !st.ok()) return st;
  auto merge = s.GetBool("merge", true);
  if (!merge.ok()) return merge.status();
  ServiceInstance instance;
  instance.handler = std::make_shared<SenecaEntityAdapter>(*merge);
  instance.patterns = {"sys:entity"};
  return instance;
}

}  // namespace shardkit::services
