// What the `shardkit` command line answers to a newcomer's mistakes, checked word for word: a
// mistyped command, an invalid option value, a `no handler` reply.
#include <gmock/gmock.h>

#include "serve_process.h"
#include "test_util.h"

#ifndef SHARDKIT_BINARY
#error "SHARDKIT_BINARY must name the shardkit executable"
#endif

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kNode[] = R"(
[node]
name = "cli-test"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "likes"
type = "kv"
patterns = ["likes:*", "store:*,kind:likes"]
)";

TEST(CliMessages, AnUnknownCommandIsNamedWithTheClosestOne) {
  TempDir dir;
  struct Case {
    const char* args;
    const char* err;
  };
  for (const Case& c : {
           Case{"serv", "shardkit: unknown command 'serv'; did you mean 'serve'?\n"},
           Case{"acts --to tcp://127.0.0.1:1",
                "shardkit: unknown command 'acts'; did you mean 'act'?\n"},
           Case{"migrate stat --id m1",
                "shardkit: unknown command 'migrate stat'; did you mean 'migrate status'?\n"},
           Case{"bench codex",
                "shardkit: unknown command 'bench codex'; did you mean 'bench codec'?\n"},
           Case{"help", "shardkit: unknown command 'help'; for help run 'shardkit --help'\n"},
           Case{"migrate help",
                "shardkit: unknown command 'migrate help'; for help run 'shardkit migrate "
                "--help'\n"},
       }) {
    ShellRun run = Shell(dir, Cli(c.args));
    EXPECT_EQ(run.exit_code, 2) << c.args;
    EXPECT_EQ(run.err, c.err) << c.args;
  }
  ShellRun far = Shell(dir, Cli("xyzzy"));
  EXPECT_EQ(far.exit_code, 2);
  EXPECT_THAT(far.err, HasSubstr("shardkit: unknown command 'xyzzy'; the commands are: serve, act, "
                                 "explain, routes, stats, reload, migrate, bench, demo\n"));
}

TEST(CliMessages, AnInvalidLogLevelIsRefusedListingTheValidOnes) {
  TempDir dir;
  // Bounded: a node that accepts the value serves until stopped.
  ShellRun run = Shell(dir, "timeout 10 " + Cli("serve --config " + dir.Write("node.toml", kNode) +
                                                " --log-level verbose"));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("--log-level: verbose not in {trace,debug,info,warn,error,off}"));
}

TEST(CliMessages, ANonPositiveNumberIsRefusedInWords) {
  TempDir dir;
  ShellRun act = Shell(dir, Cli("act role:echo --to tcp://127.0.0.1:1 --timeout-ms 0"));
  EXPECT_EQ(act.exit_code, 2);
  EXPECT_THAT(act.err, HasSubstr("--timeout-ms: 0 is not a number greater than 0"));
  EXPECT_THAT(act.err, Not(HasSubstr("1797")));
  ShellRun migrate =
      Shell(dir, Cli("migrate status --to tcp://127.0.0.1:1 --id m --timeout-ms -5"));
  EXPECT_EQ(migrate.exit_code, 2);
  EXPECT_THAT(migrate.err, HasSubstr("--timeout-ms: -5 is not a number greater than 0"));
}

TEST(CliMessages, EachMigrateCommandSaysWhatItDoesAndToReadsTheSameEverywhere) {
  TempDir dir;
  const std::string to_help =
      "The node: tcp:// or tls://host:port, http:// or https://host:port, or "
      "nats://[user:password@]host:port";
  ShellRun migrate = Shell(dir, Cli("migrate --help"));
  EXPECT_EQ(migrate.exit_code, 0);
  EXPECT_THAT(migrate.out, Not(HasSubstr("The migration's")));
  EXPECT_THAT(
      migrate.out,
      HasSubstr("Wait until the targets caught up, then compare them with the sources key by key"));
  for (const char* command : {"act", "explain", "routes", "stats", "reload", "migrate split",
                              "migrate status", "migrate cutover"}) {
    ShellRun help = Shell(dir, Cli(std::string(command) + " --help"));
    EXPECT_EQ(help.exit_code, 0) << command;
    EXPECT_THAT(help.out, HasSubstr(to_help)) << command;
  }
}

TEST(CliMessages, ANoHandlerReplyNamesTheClosestPatternsAndExplain) {
  TempDir dir;
  ServeProcess serve(dir, dir.Write("node.toml", kNode));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 1u);
  ShellRun run = Shell(dir, Cli("act like:add,post:1 --to " + urls[0]));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("shardkit: no_route: no handler for 'like:add,post:1'\n"
                                 "closest patterns routed on the node:\n"
                                 "  likes:*                          0 of 1 terms match; "
                                 "no property 'likes'\n"));
  EXPECT_THAT(run.err,
              HasSubstr("how the node routes it: shardkit explain 'like:add,post:1' --to " +
                        urls[0] + "\n"));
}

}  // namespace
}  // namespace shardkit::services::testing
