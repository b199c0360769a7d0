// <linux/sockios.h> / <asm-generic/ioctls.h>: the socket ioctls the lab reads queues with.
#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

public static class sys_ioctl
{
    /// <summary>Bytes received and not yet read (same number as FIONREAD). For a TCP socket: rcv_nxt - copied_seq.</summary>
    public const int SIOCINQ = 0x541B;
    /// <summary>Bytes in the send queue not yet acknowledged by the peer (unsent + unacked): write_seq - snd_una.</summary>
    public const int SIOCOUTQ = 0x5411;
    /// <summary>Bytes in the send queue not yet sent (write_seq - snd_nxt).</summary>
    public const int SIOCOUTQNSD = 0x894B;
}
