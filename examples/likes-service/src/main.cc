// likes-node: the `shardkit` command line (serve, act, explain, reload, …) with the "likes"
// service type and the "likes-total" projection type added. `likes-node serve --config node.toml`
// runs a node that can host them.
#include <cstdio>

#include <likes/likes_service.h>
#include <likes/likes_total.h>
#include <shardkit/cli/main.h>

int main(int argc, char** argv) {
  for (shardkit::Status s : {likes::RegisterLikesServiceType(), likes::RegisterLikesTotalType()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "likes-node: %s\n", s.ToString().c_str());
      return 2;
    }
  }
  return shardkit::cli::Main(argc, argv, {.name = "likes-node"});
}
