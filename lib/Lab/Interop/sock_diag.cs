// include/uapi/linux/sock_diag.h: the one message type every sock_diag family answers.
#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

public static class sock_diag
{
    public const ushort SOCK_DIAG_BY_FAMILY = 20;
    public const ushort SOCK_DESTROY = 21;
}
