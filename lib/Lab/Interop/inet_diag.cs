// include/uapi/linux/inet_diag.h: what `ss` sends and receives over NETLINK_SOCK_DIAG for TCP/UDP sockets.
// Addresses and ports are in network byte order, as in the header (__be16, __be32).
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

[StructLayout(LayoutKind.Sequential)]
public unsafe struct inet_diag_sockid
{
    public ushort idiag_sport;
    public ushort idiag_dport;
    public fixed uint idiag_src[4];
    public fixed uint idiag_dst[4];
    public uint idiag_if;
    public fixed uint idiag_cookie[2];
}

/// <summary>The original request (message type TCPDIAG_GETSOCK): the kernel dumps it with family AF_UNSPEC,
/// so one table walk returns IPv4 and IPv6 sockets.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct inet_diag_req
{
    public byte idiag_family;
    public byte idiag_src_len;
    public byte idiag_dst_len;
    public byte idiag_ext;
    public inet_diag_sockid id;
    public uint idiag_states;
    public uint idiag_dbs;
}

[StructLayout(LayoutKind.Sequential)]
public struct inet_diag_req_v2
{
    public byte sdiag_family;
    public byte sdiag_protocol;
    public byte idiag_ext;
    public byte pad;
    public uint idiag_states;
    public inet_diag_sockid id;
}

[StructLayout(LayoutKind.Sequential)]
public struct inet_diag_msg
{
    public byte idiag_family;
    public byte idiag_state;
    public byte idiag_timer;
    public byte idiag_retrans;
    public inet_diag_sockid id;
    public uint idiag_expires;
    public uint idiag_rqueue;
    public uint idiag_wqueue;
    public uint idiag_uid;
    public uint idiag_inode;
}

/// <summary>One bytecode instruction: a conditional jump forward by <c>yes</c> or <c>no</c> bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct inet_diag_bc_op
{
    public byte code;
    public byte yes;
    public ushort no;
}

public static class inet_diag
{
    public const uint INET_DIAG_NOCOOKIE = ~0U;

    /// <summary>The message type of the original TCP request (struct inet_diag_req).</summary>
    public const ushort TCPDIAG_GETSOCK = 18;

    // Request attributes (enum INET_DIAG_REQ_*).
    public const ushort INET_DIAG_REQ_NONE = 0;
    public const ushort INET_DIAG_REQ_BYTECODE = 1;

    // Bytecode op codes (enum INET_DIAG_BC_*).
    public const byte INET_DIAG_BC_NOP = 0;
    public const byte INET_DIAG_BC_JMP = 1;
    public const byte INET_DIAG_BC_S_GE = 2;
    public const byte INET_DIAG_BC_S_LE = 3;
    public const byte INET_DIAG_BC_D_GE = 4;
    public const byte INET_DIAG_BC_D_LE = 5;
    public const byte INET_DIAG_BC_AUTO = 6;
    public const byte INET_DIAG_BC_S_COND = 7;
    public const byte INET_DIAG_BC_D_COND = 8;
    public const byte INET_DIAG_BC_DEV_COND = 9;
    public const byte INET_DIAG_BC_MARK_COND = 10;
    public const byte INET_DIAG_BC_S_EQ = 11;
    public const byte INET_DIAG_BC_D_EQ = 12;

    // Response attributes (enum INET_DIAG_*). Only those the lab reads are listed.
    public const ushort INET_DIAG_NONE = 0;
    public const ushort INET_DIAG_MEMINFO = 1;
    public const ushort INET_DIAG_INFO = 2;
    public const ushort INET_DIAG_SHUTDOWN = 8;
}
