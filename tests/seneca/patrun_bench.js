// patrun's find over the pattern sets and messages of `shardkit bench router` (the fixture file it
// writes), timed in slices on request so that the bench interleaves them with its own matcher's:
//   node patrun_bench.js FIXTURE
//   stdout: "ready" once the sets are loaded
//   stdin: "<patterns> <seconds>" per slice   stdout: "<finds per second>" per slice
// FIXTURE: {"<patterns>": {"patterns": [{...}], "messages": [{...}]}, ...}
'use strict'

const fs = require('fs')
const readline = require('readline')
const Patrun = require('patrun')

const sets = {}
for (const [size, set] of Object.entries(JSON.parse(fs.readFileSync(process.argv[2], 'utf8')))) {
  const router = Patrun()
  set.patterns.forEach((pattern, i) => router.add(pattern, i))
  sets[size] = { router, messages: set.messages }
}

// This process's CPU time in seconds: its user and system time, the threads V8 runs beside the
// script (garbage collection, compilation) included, as they work for find.
function cpuSeconds () {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1e6
}

// Finds per second of CPU time over `seconds` of it, the clock read once per 1,024 finds as the
// C++ side does (CPU time on both sides: on a shared machine wall time measures the scheduler).
function slice (set, seconds) {
  const { router, messages } = set
  const start = cpuSeconds()
  const until = start + seconds
  let done = 0
  let misses = 0
  let now = start
  while (now < until) {
    for (let i = 0; i < 1024; ++i) {
      if (router.find(messages[(done + i) % messages.length]) === null) misses++
    }
    done += 1024
    now = cpuSeconds()
  }
  if (misses > 0) throw new Error(`${misses} messages found no pattern`)
  return done / (now - start)
}

// Loaded: the bench starts timing only now, so that this start-up does not share the machine
// with its first slice.
process.stdout.write('ready\n')

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [size, seconds] = line.trim().split(/\s+/)
  const set = sets[size]
  if (!set) {
    process.stdout.write(`error: no pattern set of ${size}\n`)
    return
  }
  process.stdout.write(`${slice(set, Number(seconds))}\n`)
})
