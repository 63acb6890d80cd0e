// An example service type of your own, run in a node binary of your own (docs/extending.md): a
// like counter kept in any shardkit store.
//
//   likes:add,post:P    loads store:load,kind:<kind>,id:P, saves the count + 1 with the loaded
//                       version as a precondition, and retries from the load when another writer
//                       got there first (conflict). Answers {"post":"P","likes":N}.
//   likes:get,post:P    answers {"post":"P","likes":N} (0 for a post nobody liked).
//
// Config ([[service]] type = "likes"): kind (string, default "likes"), max_retries (int 0..100,
// default 5). Errors: `invalid` naming `post` when it is missing or empty; `conflict` after
// max_retries lost races; any store error as the store gave it.
//
// Thread-safety: Handle may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include <shardkit/message/handler.h>
#include <shardkit/message/status.h>

namespace likes {

struct LikesOptions {
  std::string kind = "likes";  // the store kind the counts are kept under
  int max_retries = 5;         // conflicts tolerated per likes:add
};

std::shared_ptr<shardkit::Handler> MakeLikesService(LikesOptions options = {});

// Registers the "likes" service type with the process's service registry. Call once, before a
// node starts (a second call answers `conflict`).
shardkit::Status RegisterLikesServiceType();

}  // namespace likes
