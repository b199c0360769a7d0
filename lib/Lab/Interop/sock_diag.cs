// include/uapi/linux/sock_diag.h: the one message type every sock_diag family answers.
namespace Lab.Interop;

public static class sock_diag
{
    public const ushort SOCK_DIAG_BY_FAMILY = 20;
    public const ushort SOCK_DESTROY = 21;
}
