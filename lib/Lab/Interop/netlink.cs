// include/uapi/linux/netlink.h: the netlink message header, socket address and the constants the lab uses.
// C names kept on purpose; friendly types live in Lab.Observe. Layout proven by tests/Lab.Tests/Interop/NetlinkLayoutTests.cs.
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

[StructLayout(LayoutKind.Sequential)]
public struct sockaddr_nl
{
    public ushort nl_family;
    public ushort nl_pad;
    public uint nl_pid;
    public uint nl_groups;
}

[StructLayout(LayoutKind.Sequential)]
public struct nlmsghdr
{
    public uint nlmsg_len;
    public ushort nlmsg_type;
    public ushort nlmsg_flags;
    public uint nlmsg_seq;
    public uint nlmsg_pid;
}

[StructLayout(LayoutKind.Sequential)]
public struct nlmsgerr
{
    public int error;
    public nlmsghdr msg;
}

[StructLayout(LayoutKind.Sequential)]
public struct nlattr
{
    public ushort nla_len;
    public ushort nla_type;
}

public static class netlink
{
    public const int NETLINK_ROUTE = 0;
    public const int NETLINK_SOCK_DIAG = 4;

    public const ushort NLM_F_REQUEST = 0x01;
    public const ushort NLM_F_MULTI = 0x02;
    public const ushort NLM_F_ACK = 0x04;
    public const ushort NLM_F_ROOT = 0x100;
    public const ushort NLM_F_MATCH = 0x200;
    public const ushort NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;

    public const ushort NLMSG_NOOP = 0x1;
    public const ushort NLMSG_ERROR = 0x2;
    public const ushort NLMSG_DONE = 0x3;
    public const ushort NLMSG_OVERRUN = 0x4;

    public const int NLMSG_ALIGNTO = 4;
    public static int NLMSG_ALIGN(int len) => (len + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
    public static readonly int NLMSG_HDRLEN = NLMSG_ALIGN(Marshal.SizeOf<nlmsghdr>());
    public static int NLMSG_LENGTH(int len) => len + NLMSG_HDRLEN;

    public const int NLA_ALIGNTO = 4;
    public static int NLA_ALIGN(int len) => (len + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1);
    public static readonly int NLA_HDRLEN = NLA_ALIGN(Marshal.SizeOf<nlattr>());

    /// <summary>SOL_NETLINK socket option: report the extended ack (error strings) on failed requests.</summary>
    public const int SOL_NETLINK = 270;
    public const int NETLINK_EXT_ACK = 11;
}
