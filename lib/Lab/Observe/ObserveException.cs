namespace Lab.Observe;

/// <summary>
/// A reading the lab could not take: names what was being read, the errno when there is one, and what to do.
/// Expected outcomes (an empty table, a port nobody listens on) are values, never this exception.
/// </summary>
public class ObserveException : Exception
{
    /// <summary>The errno the kernel returned (0 when the failure is not an errno).</summary>
    public int Errno { get; }

    /// <summary>The errno's symbolic name (<c>EPERM</c>), or null.</summary>
    public string? ErrnoName => Errno == 0 ? null : Observe.Errno.Name(Errno);

    public ObserveException(string message, int errno = 0, Exception? inner = null) : base(message, inner) => Errno = errno;
}

/// <summary>The errno names the readings layer reports (a small table: only those the readings can meet).</summary>
internal static class Errno
{
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
        EBUSY = 16, EINVAL = 22, EROFS = 30, ERANGE = 34, EOPNOTSUPP = 95, EPROTONOSUPPORT = 93, ENOBUFS = 105;

    public static string Name(int errno) => errno switch
    {
        EPERM => "EPERM", ENOENT => "ENOENT", EINTR => "EINTR", EIO => "EIO", EBADF => "EBADF", EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM", EACCES => "EACCES", EBUSY => "EBUSY", EINVAL => "EINVAL", EROFS => "EROFS", ERANGE => "ERANGE",
        EOPNOTSUPP => "EOPNOTSUPP", EPROTONOSUPPORT => "EPROTONOSUPPORT", ENOBUFS => "ENOBUFS",
        _ => "errno " + errno,
    };

    /// <summary>"EPERM (Operation not permitted)".</summary>
    public static string Describe(int errno) => $"{Name(errno)} ({System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)})";
}
