// Projection types (projection_types.h): a read model registered by the embedder is run by a
// node's `projection` service from its config and serves its query; names and keys no type has
// are refused when the config loads, naming the key, and create nothing.
#include <gmock/gmock.h>

#include <filesystem>

#include "shardkit/services/data_services.h"
#include "shardkit/services/projection_types.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;

// How many times entities of one kind were saved.
class SavesProjection final : public cqrs::Projection {
 public:
  explicit SavesProjection(std::string kind) : kind_(std::move(kind)) {}
  std::string name() const override { return "saves:" + kind_; }
  Result<std::vector<cqrs::Write>> Apply(const cqrs::Event& e,
                                         const cqrs::StateView& state) override {
    if (e.kind != kind_ || e.op != cqrs::EventOp::kSave) return std::vector<cqrs::Write>{};
    auto n = state.Get("n");
    if (!n.ok()) return n.status();
    const uint64_t saves = n->has_value() ? std::stoull(**n) : 0;
    return std::vector<cqrs::Write>{{"n", std::to_string(saves + 1)}};
  }
  Result<Message> Query(const Message&, const cqrs::ReadView& view) override {
    auto n = view.Get("n");
    if (!n.ok()) return n.status();
    Message out;
    out.SetUint("saves", n->has_value() ? std::stoull(**n) : 0);
    return out;
  }

 private:
  const std::string kind_;
};

void RegisterSaves() {
  static const Status registered = RegisterProjectionType(
      "test.saves",
      {.settings = {"kind"}, .factory = [](const Settings& s) -> Result<ProjectionInstance> {
         auto kind = s.GetString("kind", "entry");
         if (!kind.ok()) return kind.status();
         if (kind->empty()) return s.Error("kind", "must not be empty");
         return ProjectionInstance{std::make_unique<SavesProjection>(*kind), {"saves:count"}};
       }});
  ASSERT_TRUE(registered.ok()) << registered.ToString();
}

// A command log, its target store and one projection service with `projection_keys`.
std::string Config(const TempDir& dir, std::string_view projection_keys) {
  return fmt::format(R"(
[node]
name = "p"
[[service]]
name = "commands"
type = "command-log"
path = "{0}/log"
durability = "none"
[[service]]
name = "target"
type = "store"
backend = "memory"
patterns = ["store:*,kind:entry,cqrs:apply"]
[[service]]
name = "view"
type = "projection"
log = "commands"
path = "{0}/view"
durability = "none"
{1}
[[route]]
pattern = "store:save,kind:entry"
to = "commands"
)",
                     dir.path(), projection_keys);
}

Result<std::unique_ptr<Node>> Start(const std::string& toml) {
  RegisterDataServices();
  RegisterSaves();
  auto config = ParseNodeConfig(toml, "p.toml");
  if (!config.ok()) return config.status();
  NodeOptions options;
  options.listen = false;
  options.environment.directory = std::make_shared<ServiceDirectory>();  // its own command log
  return Node::Start(*config, std::move(options));
}

TEST(ProjectionTypes, ARegisteredTypeIsRunFromTheConfigAndServesItsQuery) {
  TempDir dir;
  auto node = Start(Config(dir, R"(projection = "test.saves"
kind = "entry")"));
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  Bus& bus = (*node)->bus();
  uint64_t position = 0;
  for (const char* id : {"a", "b", "a"}) {
    auto ack = bus.ActAndWait(
        Msg(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}"}}}})", id)));
    ASSERT_TRUE(ack.ok()) << ack.status().ToString();
    position = ack->GetUint("position").value_or(0);
  }
  auto saves = bus.ActAndWait(
      Msg(fmt::format(R"({{"saves":"count","min_position":{},"timeout_ms":5000}})", position)));
  ASSERT_TRUE(saves.ok()) << saves.status().ToString();
  EXPECT_EQ(saves->GetUint("saves"), std::optional<uint64_t>(3));
  auto status = bus.ActAndWait(Msg(R"({"cqrs":"status","service":"view"})"));
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_THAT(std::string(status->GetArrayJson("items").value_or("")), HasSubstr("saves:entry"));
}

TEST(ProjectionTypes, UnknownNamesAndKeysAreRefusedNamingTheKeyAndCreateNothing) {
  TempDir dir;
  auto refused = [&](std::string_view keys) {
    auto node = Start(Config(dir, keys));
    return node.ok() ? std::string("started") : node.status().ToString();
  };
  // A read model shardkit no longer ships is a name like any other.
  EXPECT_THAT(refused(R"(projection = "entries-per-user")"),
              HasSubstr("service 'view' (projection): key 'projection': unknown projection "
                        "'entries-per-user' (registered: entities, test.saves)"));
  // Keys are the service's and the type's: entities reads kind, not user_field.
  EXPECT_THAT(refused("projection = \"entities\"\nuser_field = \"user\""),
              HasSubstr("key 'user_field': unknown key"));
  EXPECT_THAT(refused("projection = \"test.saves\"\nkind = \"\""),
              HasSubstr("key 'kind': must not be empty"));
  EXPECT_THAT(refused(""), HasSubstr("key 'projection'"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/view"))
      << "a refused projection created its read model's directory";
}

TEST(ProjectionTypes, RegisterRefusesAnEmptyNameNoFactoryAndATakenName) {
  ProjectionRegistry registry;
  auto factory = [](const Settings&) -> Result<ProjectionInstance> {
    return ProjectionInstance{std::make_unique<SavesProjection>("x"), {}};
  };
  EXPECT_EQ(registry.Register("", {.factory = factory}).code(), Code::kInvalid);
  EXPECT_EQ(registry.Register("x", {}).code(), Code::kInvalid);
  EXPECT_TRUE(registry.Register("x", {.factory = factory}).ok());
  EXPECT_EQ(registry.Register("x", {.factory = factory}).code(), Code::kConflict);
  EXPECT_NE(registry.Find("x"), nullptr);
  EXPECT_EQ(registry.Find("y"), nullptr);
  EXPECT_EQ(registry.Names(), std::vector<std::string>{"x"});
  // The global registry ships one type.
  EXPECT_NE(ProjectionRegistry::Global().Find("entities"), nullptr);
}

}  // namespace
}  // namespace shardkit::services::testing
