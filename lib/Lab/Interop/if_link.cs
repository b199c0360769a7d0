// include/uapi/linux/if_link.h and if.h: the link attribute and flags the lab reads from RTM_NEWLINK.
#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

public static class if_link
{
    public const ushort IFLA_IFNAME = 3;

    // include/uapi/linux/if.h (enum net_device_flags)
    public const uint IFF_UP = 1 << 0;
    public const uint IFF_LOOPBACK = 1 << 3;
    public const uint IFF_RUNNING = 1 << 6;
}
