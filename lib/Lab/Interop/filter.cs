// include/uapi/linux/filter.h and bpf_common.h: classic BPF, the socket filters tcpdump compiles its expressions to,
// and include/uapi/linux/if_packet.h's capture statistics. C names kept on purpose; friendly code lives in
// Lab.Packets. Layout proven by tests/Lab.Tests/Interop/NetlinkLayoutTests.cs.
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

/// <summary>One classic BPF instruction: an opcode, two relative jumps (true, false) and an operand.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct sock_filter
{
    public ushort code;
    public byte jt;
    public byte jf;
    public uint k;

    public sock_filter(ushort code, byte jt, byte jf, uint k) { this.code = code; this.jt = jt; this.jf = jf; this.k = k; }
}

/// <summary>A classic BPF program, as SO_ATTACH_FILTER takes it.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct sock_fprog
{
    public ushort len;
    public sock_filter* filter;
}

/// <summary>PACKET_STATISTICS: packets the socket received and dropped since the last read (reading resets both).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct tpacket_stats
{
    public uint tp_packets;
    public uint tp_drops;
}

public static class filter
{
    public const ushort BPF_LD = 0x00, BPF_LDX = 0x01, BPF_ALU = 0x04, BPF_JMP = 0x05, BPF_RET = 0x06;
    public const ushort BPF_W = 0x00, BPF_H = 0x08, BPF_B = 0x10;
    public const ushort BPF_ABS = 0x20, BPF_IND = 0x40, BPF_MSH = 0xa0;
    public const ushort BPF_RSH = 0x70, BPF_JEQ = 0x10, BPF_K = 0x00;
    public const int SOL_PACKET = 263;
    /// <summary>linux/if_ether.h: every protocol, what an AF_PACKET socket binds to in order to see all frames.</summary>
    public const ushort ETH_P_ALL = 0x0003;
    /// <summary>linux/if_packet.h: sll_pkttype of a frame this host sent (on lo every frame is seen out, then in).</summary>
    public const byte PACKET_OUTGOING = 4;
    public const int PACKET_STATISTICS = 6;
}
