# A real libtorrent (python3-libtorrent, 2.x) seeding a BEP 52 hybrid torrent
# it has just made, announcing to the tracker URL given as the first argument.
# Prints one JSON line (v1 hash, v2 hash and its truncation, listen port) once
# the torrent is seeding, then runs until its stdin closes. Used by
# tests/src/hybrid-links.test.ts.
import json
import os
import sys
import tempfile

import libtorrent as lt

tracker = sys.argv[1]
work = tempfile.mkdtemp(prefix='shoal-lt-')
with open(os.path.join(work, 'payload.bin'), 'wb') as f:
    f.write(os.urandom(256 * 1024))
fs = lt.file_storage()
lt.add_files(fs, os.path.join(work, 'payload.bin'))
ct = lt.create_torrent(fs)  # v1 + v2 (hybrid) is libtorrent 2's default
ct.add_tracker(tracker)
lt.set_piece_hashes(ct, work)
info = lt.torrent_info(ct.generate())
hashes = info.info_hashes()
assert hashes.has_v1() and hashes.has_v2(), 'not a hybrid torrent'

session = lt.session({
    'listen_interfaces': '127.0.0.1:0',
    'enable_dht': False,
    'enable_lsd': False,
    'enable_upnp': False,
    'enable_natpmp': False,
    'announce_to_all_trackers': True,
    'announce_to_all_tiers': True,
    'alert_mask': lt.alert_category.status | lt.alert_category.tracker | lt.alert_category.error,
})
handle = session.add_torrent({'ti': info, 'save_path': work})

seeding = False
replies = set()
while True:
    session.wait_for_alert(500)
    for a in session.pop_alerts():
        if isinstance(a, lt.tracker_error_alert):
            print(json.dumps({'trackerError': a.message()}), file=sys.stderr, flush=True)
        if isinstance(a, lt.tracker_reply_alert):
            replies.add(int(a.version))
    st = handle.status()
    if not seeding and st.is_seeding:
        seeding = True
    if seeding and len(replies) == 2:
        break

v2 = str(hashes.v2)
print(json.dumps({
    'v1': str(hashes.v1),
    'v2': v2,
    'v2Truncated': v2[:40],
    'port': session.listen_port(),
    'announced': sorted(replies),
}), flush=True)
sys.stdin.read()
session.pause()
