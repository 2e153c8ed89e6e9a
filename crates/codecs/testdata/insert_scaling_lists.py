#!/usr/bin/env python3
# Inserts explicit scaling lists into a real x264 SPS, because x264 never writes them in
# the SPS (it puts custom matrices in the PPS). Usage:
#   insert_scaling_lists.py <sps hex with NAL header> <comma-separated list indices>
# Each inserted list is delta_scale +8, -3, then zeros (H.264 7.3.2.1.1.1). The output was
# checked by splicing it into the x264 stream and running ffprobe, ffmpeg's
# trace_headers bitstream filter, and a full decode (see PROVENANCE.md).
import sys
def unesc(b):
    out=bytearray(); z=0
    for x in b:
        if z>=2 and x==3: z=0; continue
        z = z+1 if x==0 else 0; out.append(x)
    return bytes(out)
def esc(b):
    out=bytearray(); z=0
    for x in b:
        if z>=2 and x<=3: out.append(3); z=0
        out.append(x); z = z+1 if x==0 else 0
    return bytes(out)
def bits(b): return ''.join(f'{x:08b}' for x in b)
def ue_len(s,p):
    z=0
    while s[p+z]=='0': z+=1
    return 2*z+1
def ue(v):
    v+=1; n=v.bit_length(); return '0'*(n-1)+format(v,'b')
def se(v): return ue(2*v-1 if v>0 else -2*v)
sps=bytes.fromhex(sys.argv[1]); lists=sys.argv[2]  # e.g. "0,6"
r=bits(unesc(sps[1:]))
p=24; p+=ue_len(r,p)            # sps_id
cl=ue_len(r,p); chroma=int(r[p:p+cl],2)-1; p+=cl
if chroma==3: p+=1
p+=ue_len(r,p); p+=ue_len(r,p)  # bit depths
p+=1                            # qpprime
assert r[p]=='0'
n=12 if chroma==3 else 8
ins='1'
want=[int(x) for x in lists.split(',')]
for i in range(n):
    if i in want:
        size=16 if i<6 else 64
        ins+='1'+se(8)+se(-3)+''.join(se(0) for _ in range(size-2))
    else: ins+='0'
rest=r[p+1:].rstrip('0'); assert rest.endswith('1'); rest=rest[:-1]
nb=r[:p]+ins+rest+'1'
nb+='0'*((-len(nb))%8)
raw=bytes(int(nb[i:i+8],2) for i in range(0,len(nb),8))
print((sps[:1]+esc(raw)).hex())
