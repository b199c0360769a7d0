using System.Diagnostics;
using Lab.Observe;

namespace Lab.Tests.Observe;

public class ThreadLookTests
{
    [Fact]
    public void AnotherProcesssThreadIsReadFromItsOwnProcDirectory()
    {
        // cat with nothing on its standard input sleeps in read(2): a peer process waiting, as an idle nginx worker does in epoll_wait.
        var psi = new ProcessStartInfo("cat") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        using var cat = Process.Start(psi)!;
        try
        {
            var look = ThreadLook.Until(cat.Id, l => l.AsleepInWait, TimeSpan.FromSeconds(10), process: cat.Id);
            Assert.NotNull(look);
            Assert.True(look.AsleepInWait, look.ToString());
            Assert.Equal(("cat", "read"), (look.Name, look.SyscallName));
            Assert.Null(ThreadLook.TryOf(cat.Id));   // not a thread of this process
        }
        finally
        {
            cat.StandardInput.Close();                // end of input: cat exits
            if (!cat.WaitForExit(TimeSpan.FromSeconds(10))) cat.Kill();
        }
        Assert.Null(ThreadLook.TryOf(cat.Id, process: cat.Id));
    }
}
