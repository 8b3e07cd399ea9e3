#!/bin/sh
# Prints the SigBlk, SigIgn and SigCgt lines of /proc/self/status. `exec` so the lines describe
# the process the runner started with exactly the mask and dispositions it inherited.
exec grep -E '^Sig(Blk|Ign|Cgt):' /proc/self/status
