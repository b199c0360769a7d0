// <linux/capability.h>: capget/capset act on one thread (the kernel's credentials are per task), which is how a
// test drops CAP_NET_BIND_SERVICE or CAP_NET_RAW on one thread without touching the rest of the process.
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

[StructLayout(LayoutKind.Sequential)]
public struct __user_cap_header_struct
{
    public uint version;
    public int pid; // 0 = the calling thread
}

[StructLayout(LayoutKind.Sequential)]
public struct __user_cap_data_struct
{
    public uint effective;
    public uint permitted;
    public uint inheritable;
}

public static unsafe class linux_capability
{
    public const uint _LINUX_CAPABILITY_VERSION_3 = 0x20080522;
    /// <summary>Version 3 takes two __user_cap_data_struct: capabilities 0-31 and 32-63.</summary>
    public const int _LINUX_CAPABILITY_U32S_3 = 2;

    public const int CAP_NET_BIND_SERVICE = 10;
    public const int CAP_NET_ADMIN = 12;
    public const int CAP_NET_RAW = 13;
    public const int CAP_SYS_ADMIN = 21;
    public const int CAP_SYS_RESOURCE = 24;

    [DllImport("libc", SetLastError = true)]
    public static extern int capget(__user_cap_header_struct* hdrp, __user_cap_data_struct* datap);

    [DllImport("libc", SetLastError = true)]
    public static extern int capset(__user_cap_header_struct* hdrp, __user_cap_data_struct* datap);
}
