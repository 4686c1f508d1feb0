"""Probe how Claude Code takes pastes / typed text + CR written straight to its PTY.

    python3 paste_timing_probe.py [paste|paste2|typed|all]

Spawns model_standin.py and `claude` (fresh HOME in a temp dir) in a 120x40 PTY,
waits for the input box, then writes test inputs and reports per trial
whether the prompt reached the stand-in (submitted=True) or the CR was
swallowed (then an extra CR is sent). Results: NOTES.md "Typing / paste timing".
"""
import os, pty, sys, time, threading, json, subprocess, re, fcntl, termios, struct, tempfile
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import claude_home
D = tempfile.mkdtemp(prefix='cc_probe_'); os.makedirs(D+'/home', exist_ok=True); os.makedirs(D+'/proj', exist_ok=True)
log = D+'/req.jsonl'
if os.path.exists(log): os.remove(log)
srv = subprocess.Popen([sys.executable, os.path.join(HERE, 'model_standin.py'), '--port', '0', '--log', log], stdout=subprocess.PIPE, text=True)
port = int(srv.stdout.readline().strip().split('=')[1])
key = 'sk-ant-test-0123456789abcdefghijklmnop'
claude_home.make_home(D+'/home', D+'/proj', key)
env = claude_home.agent_env(D+'/home', key, port, base={'PATH': '/usr/local/bin:/usr/bin:/bin'})
pid, fd = pty.fork()
if pid == 0:
    os.chdir(D+'/proj'); os.execvpe('claude', ['claude'], env)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 120, 0, 0))
buf = bytearray(); lock = threading.Lock()
def reader():
    while True:
        try: b = os.read(fd, 65536)
        except OSError: return
        if not b: return
        with lock: buf.extend(b)
threading.Thread(target=reader, daemon=True).start()
t0 = time.time()
while b'shortcuts' not in buf and time.time()-t0 < 30: time.sleep(0.02)
print('ready after %.2fs' % (time.time()-t0), flush=True)
time.sleep(0.5)
def acks(): 
    try: return open(log).read()
    except FileNotFoundError: return ''
def wait_ack(tag, to):
    t=time.time()
    while time.time()-t < to:
        if 'ack: '+tag in acks(): return True
        time.sleep(0.05)
    return False
def trial(name, tag, writes):
    for w, gap in writes:
        os.write(fd, w); 
        if gap: time.sleep(gap)
    ok = wait_ack(tag, 2.5)
    if not ok:
        os.write(fd, b'\r'); ok2 = wait_ack(tag, 3)
    else: ok2 = None
    print('%-40s submitted=%s%s' % (name, ok, '' if ok else ' (extra CR -> %s)' % ok2), flush=True)
    time.sleep(0.8)
n=0
mode = sys.argv[1] if len(sys.argv)>1 else 'all'
if mode in ('all','paste'):
  for gap in (0, 0.005, 0.01, 0.03, 0.05, 0.1, 0.2):
    for rep in range(3):
        n+=1; tag='BP%d_' % n
        body = (tag + ' first line\nsecond line\nthird line').encode()
        trial('bracketed 3 lines, CR after %gms' % (gap*1000), tag,
              [(b'\x1b[200~' + body + b'\x1b[201~', gap), (b'\r', 0)] if gap else [(b'\x1b[200~' + body + b'\x1b[201~' + b'\r', 0)])
if mode == 'first':
  # the very first input of the session: bracketed paste, CR 10 ms later, then same-write ones
  for gap in (0.01, 0, 0, 0, 0):
    n+=1; tag='BF%d_' % n
    body = (tag + ' first line\nsecond line').encode()
    w = [(b'\x1b[200~' + body + b'\x1b[201~', gap), (b'\r', 0)] if gap else [(b'\x1b[200~' + body + b'\x1b[201~\r', 0)]
    trial('bracketed, CR after %gms' % (gap*1000), tag, w)
if mode == 'paste2':
  big = '\n'.join('line %d of a long pasted block with filler text to make it big' % i for i in range(60))
  for gap, reps in ((0, 8), (0.001, 5), (0.005, 5), (0.01, 5), (0.03, 5), (0.2, 3)):
    for rep in range(reps):
        n+=1; tag='BQ%d_' % n
        body = (tag + ' first\n' + big).encode()
        w = [(b'\x1b[200~' + body + b'\x1b[201~', gap), (b'\r', 0)] if gap else [(b'\x1b[200~' + body + b'\x1b[201~\r', 0)]
        trial('bracketed %dB, CR after %gms' % (len(body), gap*1000), tag, w)
    for rep in range(reps):
        n+=1; tag='BS%d_' % n
        body = (tag + ' first\nsecond').encode()
        w = [(b'\x1b[200~' + body + b'\x1b[201~', gap), (b'\r', 0)] if gap else [(b'\x1b[200~' + body + b'\x1b[201~\r', 0)]
        trial('bracketed %dB, CR after %gms' % (len(body), gap*1000), tag, w)
if mode in ('all','typed'):
  for ln in (20, 30, 40, 45, 50, 55, 60, 80, 200):
    for rep in range(2):
        n+=1; tag='TW%d_' % n
        s = (tag + ' ' + 'z'*ln)[:ln]
        trial('one write %d chars + CR' % ln, tag, [(s.encode()+b'\r', 0)])
  for ln in (60, 200):
    for gap in (0.01, 0.03, 0.1):
        n+=1; tag='TG%d_' % n
        s = (tag + ' ' + 'z'*ln)[:ln]
        trial('write %d chars, CR after %gms' % (ln, gap*1000), tag, [(s.encode(), gap), (b'\r', 0)])
os.kill(pid, 9); srv.kill()
