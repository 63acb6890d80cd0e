// FixtureStore: an in-memory entity store preloaded from JSON fixtures, speaking the full store:*
// protocol (store::NewMemoryStore behind store::MakeStoreService), so a test runs a real service
// against realistic data without a database.
//
//   auto store = FixtureStore::FromJson(R"({
//     "entry": [{"id":"1","user":"ann","text":"hi"}, {"id":"2","user":"bob","text":"yo"}],
//     "user":  [{"id":"ann","name":"Ann"}]
//   })");
//   store.Register(bus);                       // store:*  (or store.Register(bus,
//   "store:*,kind:entry")) … run the service under test … EXPECT_EQ(store.Count("entry"), 3);
//   EXPECT_THAT(store.Get("entry", "1"), Optional(HasSubstr("\"text\":\"hi\"")));
//
// The fixture is an object of kind -> array of entities. An entity without "id" gets a generated
// one. A malformed fixture (or a save the store refuses) fails the current test (ADD_FAILURE)
// naming the kind and the index; what loaded before stays loaded.
//
// Copies share the same store. Thread-safety: as EntityStore (every method from any thread).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/message/bus.h>
#include <shardkit/message/clock.h>
#include <shardkit/store/entity_store.h>

namespace shardkit::testing {

struct FixtureOptions {
  const Clock* clock = nullptr;                         // for TTLs; must outlive the store
  std::map<std::string, std::string> shard_key_fields;  // as StoreOptions::shard_key_fields
};

class FixtureStore {
 public:
  // An empty store.
  explicit FixtureStore(FixtureOptions options = {});

  static FixtureStore FromJson(std::string_view fixture_json, FixtureOptions options = {});
  static FixtureStore FromFile(const std::string& path, FixtureOptions options = {});

  // Adds the entities of `fixture_json` ({"kind":[…]}); the first problem, naming kind and index.
  [[nodiscard]] Status Load(std::string_view fixture_json);

  // Routes `pattern` to this store on `bus` (recorded by the bus's MessageCaptures).
  [[nodiscard]] Status Register(Bus& bus, std::string_view pattern = "store:*") const;
  // The store:* handler itself (not recorded), to wrap or route by hand.
  std::shared_ptr<Handler> handler() const { return service_; }
  const std::shared_ptr<store::EntityStore>& store() const { return store_; }

  // The stored entity's JSON, or nullopt.
  std::optional<std::string> Get(std::string_view kind, std::string_view id) const;
  // Every entity of `kind`, in key order.
  std::vector<std::string> All(std::string_view kind) const;
  size_t Count(std::string_view kind) const;

 private:
  std::shared_ptr<store::EntityStore> store_;
  std::shared_ptr<Handler> service_;
};

}  // namespace shardkit::testing
