#!/usr/bin/env python3
# Splices explicit scaling_list_data() and two short-term RPSs (the second inter-predicted)
# into a real x265 SPS, which writes neither in the SPS. Bit positions are those printed by
# ffmpeg's trace_headers for the original SPS (RBSP bit offsets from the NAL start).
# Usage: hevc_splice.py <sps hex> <pos of scaling_list_enabled_flag> <pos of num_short_term_ref_pic_sets>
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
def ue(v):
    v+=1; n=v.bit_length(); return '0'*(n-1)+format(v,'b')
def se(v): return ue(2*v-1 if v>0 else -2*v)
sps=bytes.fromhex(sys.argv[1]); sl_pos=int(sys.argv[2]); rps_pos=int(sys.argv[3])
r=bits(unesc(sps))
assert r[sl_pos]=='0' and r[rps_pos]=='1'
# scaling_list_data(): sizeId 0..3, matrixId step 3 for sizeId 3. Alternate explicit lists
# (pred_mode 1, with DC for sizeId > 1) and copies (pred_mode 0, delta 0).
sld=''
for size_id in range(4):
    for matrix_id in range(0,6,3 if size_id==3 else 1):
        if (size_id+matrix_id)%2==0:
            sld+='1'
            if size_id>1: sld+=se(4)
            sld+=se(2)+''.join(se(0) for _ in range(min(64,1<<(4+(size_id<<1)))-1))
        else:
            sld+='0'+ue(0)
# Two short-term RPSs: set 0 explicit (2 negative, 1 positive); set 1 predicted from set 0.
rps=ue(2)
rps+=ue(2)+ue(1)+ue(0)+'1'+ue(1)+'1'+ue(0)+'0'
rps+='1'+'0'+ue(0)+'1'+'01'+'00'+'1'   # 4 = NumDeltaPocs[0]+1 entries
rest=r[rps_pos+1:].rstrip('0'); assert rest.endswith('1'); rest=rest[:-1]
nb=r[:sl_pos]+'1'+'1'+sld+r[sl_pos+1:rps_pos]+rps+rest+'1'
nb+='0'*((-len(nb))%8)
raw=bytes(int(nb[i:i+8],2) for i in range(0,len(nb),8))
print(esc(raw).hex())
