// Runs a Seneca test file of this folder against real nodes, as ctest does:
//   node run.js store single    the store suites against examples/seneca/single.toml
//   node run.js store sharded   ... against sharded.toml (four shards)
//   node run.js store mem       ... against Seneca's own mem-store over the same transport
//   node run.js errors          errors.test.js (starts its own nodes)
//   node run.js split           split.test.js: saves and loads during `shardkit migrate split`
// Node's exit code is lab's.
'use strict'

const ChildProcess = require('child_process')
const Fs = require('fs')
const Path = require('path')
const { startNode, startMemServer } = require('./lib/nodes')

// The npm packages come from this folder's lockfile; name what is missing.
function checkPackages() {
  for (const name of ['seneca', 'seneca-transport', 'seneca-entity', 'seneca-store-test', '@hapi/lab']) {
    try {
      require.resolve(name)
    } catch (err) {
      throw new Error(`npm package ${name} is missing: run \`npm ci\` in ${__dirname} (scripts/bootstrap does)`)
    }
  }
}

async function main() {
  checkPackages()
  const [test, target] = process.argv.slice(2)
  const env = { ...process.env }
  const nodes = []
  if (test === 'store') {
    if (target === 'mem') {
      nodes.push(await startMemServer([]), await startMemServer(['--merge', 'false']))
    } else if (target === 'single' || target === 'sharded') {
      nodes.push(await startNode(`${target}.toml`), await startNode('nomerge.toml'))
    } else {
      throw new Error(`store: the target must be single, sharded or mem, not '${target}'`)
    }
    env.SHARDKIT_SENECA_URL = nodes[0].http
    env.SHARDKIT_SENECA_NOMERGE_URL = nodes[1].http
  }
  const lab = Path.join(__dirname, 'node_modules', '.bin', 'lab')
  const file = Path.join(__dirname, `${test}.test.js`)
  const child = ChildProcess.spawn(lab, ['-v', '-m', '20000', file], { stdio: 'inherit', env })
  const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)))
  if (code !== 0) {
    for (const node of nodes.filter((n) => n.dir)) {
      const log = Fs.readFileSync(Path.join(node.dir, 'serve.log'), 'utf8')
      process.stderr.write(`--- ${node.dir}/serve.log (last 4 KB)\n${log.slice(-4096)}\n`)
    }
  }
  for (const node of nodes) await node.stop()
  process.exit(code)
}

main().catch((err) => {
  process.stderr.write(`run.js: ${err.stack}\n`)
  process.exit(1)
})
