// patrun's find over the pattern sets and messages of `shardkit bench router` (the fixture file it
// writes), timed in slices on request so that the bench interleaves them with its own matcher's:
//   node patrun_bench.js FIXTURE
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

// Finds per second over `seconds`, the clock read once per 1,024 finds as the C++ side does.
function slice (set, seconds) {
  const { router, messages } = set
  const start = process.hrtime.bigint()
  const until = start + BigInt(Math.round(seconds * 1e9))
  let done = 0
  let misses = 0
  let now = start
  while (now < until) {
    for (let i = 0; i < 1024; ++i) {
      if (router.find(messages[(done + i) % messages.length]) === null) misses++
    }
    done += 1024
    now = process.hrtime.bigint()
  }
  if (misses > 0) throw new Error(`${misses} messages found no pattern`)
  return done / (Number(now - start) / 1e9)
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [size, seconds] = line.trim().split(/\s+/)
  const set = sets[size]
  if (!set) {
    process.stdout.write(`error: no pattern set of ${size}\n`)
    return
  }
  process.stdout.write(`${slice(set, Number(seconds))}\n`)
})
