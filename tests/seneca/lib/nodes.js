// Real `shardkit serve` nodes for the Seneca tests: each starts from a fresh copy of
// examples/seneca, in that copy (the configs' data paths are relative), and its bound URLs are
// read from --ready-file. Killed (SIGKILL) by stop() and when the test process exits; stop()
// also removes its folder.
'use strict'

const Fs = require('fs')
const Os = require('os')
const Path = require('path')
const ChildProcess = require('child_process')
const Net = require('net')

const binary = process.env.SHARDKIT_BINARY
const examples =
  process.env.SHARDKIT_SENECA_EXAMPLES || Path.join(__dirname, '..', '..', '..', 'examples', 'seneca')
const running = new Set()

process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

// A port free at the time of asking, for a Seneca listener (they take no port 0 to report).
async function freePort() {
  return new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const port = server.address().port
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

// Resolves once `port` accepts connections (a Seneca listener starts listening after ready()).
async function waitListening(port) {
  for (let i = 0; i < 500; i++) {
    const open = await new Promise((resolve) => {
      const socket = Net.connect(port, '127.0.0.1', () => {
        socket.destroy()
        resolve(true)
      })
      socket.on('error', () => resolve(false))
    })
    if (open) return
    await sleep(10)
  }
  throw new Error(`nothing listens on port ${port} after 5 s`)
}

async function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

// Starts `config` (a file of examples/seneca, or of `files`: {name: text} written beside them);
// resolves to {dir, urls, http, tcp, stop, child}.
async function startNode(config, files = {}) {
  if (!binary) throw new Error('SHARDKIT_BINARY must name the shardkit executable')
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), 'shardkit-seneca-'))
  Fs.cpSync(examples, dir, { recursive: true })
  for (const [name, text] of Object.entries(files)) Fs.writeFileSync(Path.join(dir, name), text)
  const ready = Path.join(dir, 'ready')
  const log = Fs.openSync(Path.join(dir, 'serve.log'), 'w')
  const child = ChildProcess.spawn(binary, ['serve', '--config', config, '--ready-file', ready], {
    cwd: dir,
    stdio: ['ignore', log, log],
  })
  running.add(child)
  let exited = null
  child.on('exit', (code, signal) => {
    exited = signal || code
    running.delete(child)
  })
  for (let i = 0; i < 1000 && !Fs.existsSync(ready); i++) {
    if (exited !== null) break
    await sleep(10)
  }
  if (!Fs.existsSync(ready)) {
    child.kill('SIGKILL')
    const text = Fs.readFileSync(Path.join(dir, 'serve.log'), 'utf8')
    throw new Error(`shardkit serve --config ${config} not ready (exit ${exited}): ${text}`)
  }
  const urls = Fs.readFileSync(ready, 'utf8').split('\n').filter(Boolean)
  const http = urls.find((u) => u.startsWith('http://'))
  const tcp = urls.find((u) => u.startsWith('tcp://'))
  const stop = async () => {
    if (exited === null) child.kill('SIGKILL')
    while (exited === null) await sleep(5)
    Fs.rmSync(dir, { recursive: true, force: true })
  }
  return { dir, urls, http, tcp, stop, child }
}

// Seneca's own mem-store over seneca-transport (mem-server.js); resolves to {http, stop}.
async function startMemServer(args) {
  const child = ChildProcess.spawn(process.execPath, [Path.join(__dirname, 'mem-server.js'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  running.add(child)
  const http = await new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => resolve(String(d).trim()))
    child.once('exit', (code) => reject(new Error(`mem-server exited with ${code}`)))
  })
  const stop = async () => {
    running.delete(child)
    child.kill('SIGKILL')
  }
  return { http, stop, child }
}

module.exports = { startNode, startMemServer, freePort, waitListening, binary }
