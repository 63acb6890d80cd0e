// A Seneca app keeps saving, updating and loading entities through the seneca-entity adapter
// (seneca-transport, examples/seneca/sharded.toml: four shards and a cache) while
// `shardkit migrate split` splits shard -40 into -20 and 20-40 live: no operation fails, and
// every acknowledged entity loads afterwards with its last acknowledged data.
'use strict'

const Lab = require('@hapi/lab')
const Code = require('@hapi/code')
const Seneca = require('seneca')
const ChildProcess = require('child_process')
const { startNode, binary } = require('./lib/nodes')

const { describe, it, before, after } = (exports.lab = Lab.script())
const { expect } = Code

const WORKERS = 4

function run(args) {
  return new Promise((resolve) => {
    ChildProcess.execFile(binary, args, { timeout: 120000 }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code ?? 1 : 0, stdout, stderr }),
    )
  })
}

describe('a live split under a Seneca app', () => {
  let node, si
  before(async () => {
    node = await startNode('sharded.toml')
    const { port } = new URL(node.http)
    si = Seneca({ legacy: false, log: 'silent' })
      .test()
      .use('promisify')
      .use('entity', { mem_store: false })
      .use('seneca-transport')
      .client({ type: 'http', host: '127.0.0.1', port: Number(port), pin: 'sys:entity' })
    await si.ready()
  })
  after(async () => {
    await si.close()
    await node.stop()
  })

  it('loses nothing and fails nothing', { timeout: 120000 }, async () => {
    const acked = new Map() // id -> the last acknowledged n
    const errors = []
    let stop = false
    let ops = 0

    // Save a new entity, load it, update it, load it again; over and over.
    const worker = async (w) => {
      for (let i = 0; !stop; i++) {
        try {
          const saved = await si.entity('live/item').data$({ w, i, n: 0 }).save$()
          acked.set(saved.id, 0)
          const loaded = await si.entity('live/item').load$(saved.id)
          if (!loaded || loaded.n !== 0) errors.push(`load of new ${saved.id}: ${loaded}`)
          const updated = await si.entity('live/item').data$({ id: saved.id, n: 1 }).save$()
          if (updated.n !== 1 || updated.w !== w) errors.push(`update of ${saved.id}: ${updated}`)
          acked.set(saved.id, 1)
          const again = await si.entity('live/item').load$(saved.id)
          if (!again || again.n !== 1) errors.push(`load of updated ${saved.id}: ${again}`)
          ops += 4
        } catch (err) {
          errors.push(`${err.code}: ${err.message}`)
        }
      }
    }

    const workers = Array.from({ length: WORKERS }, (_, w) => worker(w))
    await new Promise((r) => setTimeout(r, 1000))
    const before = ops
    const split = await run([
      'migrate', 'split', '--to', node.tcp, '--id', 'split-1',
      '--source', '-40', '--targets', '-20,20-40', '--cutover', '--complete',
    ])
    const during = ops - before
    await new Promise((r) => setTimeout(r, 1000))
    stop = true
    await Promise.all(workers)

    expect(split.code, split.stdout + split.stderr).to.equal(0)
    expect(during, 'operations while the split ran').to.be.above(0)
    expect(errors).to.equal([])
    expect(acked.size).to.be.above(100)

    // Every acknowledged entity is there with its last acknowledged data, by id and by list.
    const missing = []
    for (const [id, n] of acked) {
      const ent = await si.entity('live/item').load$(id)
      if (!ent || ent.n < n) missing.push(`${id}: ${ent ? ent.n : 'missing'}`)
    }
    expect(missing).to.equal([])
    const listed = await si.entity('live/item').list$()
    expect(listed.length).to.equal(acked.size)
    console.log(`split: ${acked.size} entities, ${ops} operations, ${during} while the split ran`)
  })
})
