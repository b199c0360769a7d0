// include/uapi/linux/rtnetlink.h: the route netlink messages the lab uses to list interfaces and addresses.
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

[StructLayout(LayoutKind.Sequential)]
public struct rtattr
{
    public ushort rta_len;
    public ushort rta_type;
}

[StructLayout(LayoutKind.Sequential)]
public struct ifinfomsg
{
    public byte ifi_family;
    public byte __ifi_pad;
    public ushort ifi_type;
    public int ifi_index;
    public uint ifi_flags;
    public uint ifi_change;
}

/// <summary>A dump request body for RTM_GETLINK/RTM_GETADDR: only the family is read by the kernel.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct rtgenmsg
{
    public byte rtgen_family;
}

public static class rtnetlink
{
    public const ushort RTM_NEWLINK = 16;
    public const ushort RTM_GETLINK = 18;
    public const ushort RTM_NEWADDR = 20;
    public const ushort RTM_GETADDR = 22;

    public const int RTA_ALIGNTO = 4;
    public static int RTA_ALIGN(int len) => (len + RTA_ALIGNTO - 1) & ~(RTA_ALIGNTO - 1);
}
