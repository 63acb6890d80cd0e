// shardkit::testing — everything at once. Link shardkit::testing; docs/testing.md is the tutorial.
#pragma once

#include <shardkit/testing/capture.h>
#include <shardkit/testing/cluster.h>
#include <shardkit/testing/faults.h>
#include <shardkit/testing/fixture_store.h>
#include <shardkit/testing/matchers.h>
#include <shardkit/testing/messages.h>
#include <shardkit/testing/mock_responder.h>
#include <shardkit/testing/scheduler.h>
#include <shardkit/testing/temp_dir.h>
#include <shardkit/testing/wait.h>
