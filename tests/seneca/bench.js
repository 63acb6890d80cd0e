// Entity save$/load$ round trips per second from one Seneca client over seneca-transport's HTTP
// transport, against Seneca's own mem-store served over the same transport and against shardkit's
// seneca-entity adapter over the memory backend and over RocksDB, in one run: the targets take
// turns (rounds × targets, the order rotating each round) and each figure is the median of its
// rounds. `shardkit bench seneca` runs this (docs/performance.md).
//   node bench.js [--seconds S] [--rounds R] [--json]     SHARDKIT_BINARY names shardkit
'use strict'

const Seneca = require('seneca')
const { startNode, startMemServer } = require('./lib/nodes')

const MEMORY_CONFIG = `
[node]
name = "seneca-memory"
[[listener]]
url = "http://127.0.0.1:0"
[[service]]
name = "entities"
type = "store"
backend = "memory"
[[service]]
name = "seneca"
type = "seneca-entity"
`

function option(name, fallback) {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}

async function client(url) {
  const { port } = new URL(url)
  const si = Seneca({ legacy: false, log: 'silent' })
    .use('promisify')
    .use('entity', { mem_store: false })
    .use('seneca-transport')
    .client({ type: 'http', host: '127.0.0.1', port: Number(port), pin: 'sys:entity' })
  await si.ready()
  return si
}

// Save then load, one at a time, for `seconds`: round trips per second. Each run uses a kind of
// its own: mem-store's load$ by id scans every entity of the kind, so a kind that grew over the
// earlier runs would slow its later ones.
let runs = 0
async function measure(si, seconds) {
  const kind = `bench/run${++runs}`
  const until = Date.now() + seconds * 1000
  let trips = 0
  const start = process.hrtime.bigint()
  for (let i = 0; Date.now() < until; i++) {
    const saved = await si.entity(kind).data$({ i, text: 'some text of an entry' }).save$()
    const loaded = await si.entity(kind).load$(saved.id)
    if (!loaded || loaded.i !== i) throw new Error(`load of ${saved.id} returned ${loaded}`)
    trips += 2
  }
  return trips / (Number(process.hrtime.bigint() - start) / 1e9)
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

async function main() {
  const seconds = option('--seconds', 3)
  const rounds = option('--rounds', 3)
  const servers = {
    mem_store: await startMemServer([]),
    shardkit_memory: await startNode('memory.toml', { 'memory.toml': MEMORY_CONFIG }),
    shardkit_rocksdb: await startNode('single.toml'),
  }
  const names = Object.keys(servers)
  const clients = {}
  const samples = {}
  for (const name of names) {
    clients[name] = await client(servers[name].http)
    samples[name] = []
    await measure(clients[name], 0.5) // warm up: connections, JIT, caches
  }
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(r + k) % names.length]
      samples[name].push(await measure(clients[name], seconds))
    }
  }
  const result = { seconds, rounds, round_trips_per_s: {}, samples: {} }
  for (const name of names) {
    result.round_trips_per_s[name] = Math.round(median(samples[name]))
    result.samples[name] = samples[name].map(Math.round)
  }
  const rt = result.round_trips_per_s
  result.memory_vs_mem_store = Number((rt.shardkit_memory / rt.mem_store).toFixed(3))
  result.rocksdb_vs_mem_store = Number((rt.shardkit_rocksdb / rt.mem_store).toFixed(3))
  for (const name of names) await clients[name].close()
  for (const name of names) await servers[name].stop()
  if (process.argv.includes('--json')) {
    process.stdout.write(JSON.stringify(result) + '\n')
  } else {
    for (const name of names) process.stdout.write(`${name}: ${rt[name]} round trips/s\n`)
    process.stdout.write(`memory backend / mem-store: ${result.memory_vs_mem_store}\n`)
    process.stdout.write(`rocksdb / mem-store: ${result.rocksdb_vs_mem_store}\n`)
  }
  process.exit(0)
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.stack}\n`)
  process.exit(1)
})
