#include "router_demo.h"

#include <fmt/format.h>

#include <string_view>

#include "shardkit/message/bus.h"
#include "shardkit/message/codec.h"

namespace shardkit::cli {

// `shardkit demo --routing`: the microblog's first moves (routing, override, observers), on the
// in-process bus.
int RunRouterDemo() {
  Bus bus;
  auto say = [](std::string_view what) { fmt::print("\n== {}\n", what); };
  auto send = [&](std::string_view json) {
    auto message = ParseMessage(json);
    if (!message.ok()) {
      fmt::print("  {} -> {}\n", json, message.status().ToString());
      return;
    }
    auto explanation = bus.routes()->Explain(*message);
    auto reply = bus.ActAndWait(std::move(message).value());
    fmt::print("  {}\n    route: {}\n    reply: {}\n", json, explanation.summary,
               ToJson(ToWire(std::move(reply))));
  };

  say("A store service answers store:*,kind:entry");
  (void)bus.Add(
      "store:*,kind:entry", MakeSyncHandler([](Message m, const Context&) -> Result<Message> {
        Message reply;
        reply.SetString("served_by", "entry-store").SetString("op", *m.GetString("store"));
        return reply;
      }),
      "entry-store");
  send(R"({"store":"load","kind":"entry","id":"1"})");
  send(R"({"store":"load","kind":"user","id":"1"})");

  say("Additivity: a cache overrides the pattern and still reaches the store as its prior");
  (void)bus.Override("store:*,kind:entry",
                     MakeHandler([](Message m, const Context& ctx, ReplyFn reply) {
                       ctx.Prior(std::move(m), [reply](Result<Message> r) {
                         if (r.ok()) r->SetBool("via_cache", true);
                         reply(std::move(r));
                       });
                     }),
                     "entry-cache");
  send(R"({"store":"load","kind":"entry","id":"1"})");

  say("Most specific wins: a dedicated handler for loads of entry 42");
  (void)bus.Add("store:load,kind:entry,id:42",
                MakeSyncHandler([](Message, const Context&) -> Result<Message> {
                  return Message().SetString("served_by", "hot-entry");
                }),
                "hot-entry");
  send(R"({"store":"load","kind":"entry","id":42})");

  say("Sidewinder: info:entry is published to every observer");
  for (const char* name : {"index", "timeline"}) {
    (void)bus.Observe("info:entry",
                      MakeSyncHandler([name](Message m, const Context&) -> Result<Message> {
                        fmt::print("  {} observed {}\n", name, ToJson(m));
                        return m;
                      }));
  }
  bus.Publish(std::move(ParseMessage(R"({"info":"entry","ent":{"text":"hello"}})")).value());

  say("Bad input is refused with a clear error");
  send(R"({"store":"load",)");
  return 0;
}

}  // namespace shardkit::cli
