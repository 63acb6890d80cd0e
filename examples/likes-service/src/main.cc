// likes-node: the `shardkit` command line (serve, act, explain, reload, …) with the "likes"
// service type added. `likes-node serve --config node.toml` runs a node that can host it.
#include <cstdio>

#include <likes/likes_service.h>
#include <shardkit/cli/main.h>

int main(int argc, char** argv) {
  if (shardkit::Status s = likes::RegisterLikesServiceType(); !s.ok()) {
    std::fprintf(stderr, "likes-node: %s\n", s.ToString().c_str());
    return 2;
  }
  return shardkit::cli::Main(argc, argv, {.name = "likes-node"});
}
