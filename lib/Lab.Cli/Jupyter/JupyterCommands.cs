using Lab.Cli.Engine;

namespace Lab.Cli.Jupyter;

/// <summary>The <c>lab jupyter</c> verbs.</summary>
static class JupyterCommands
{
    public static int Install(bool user, string? prefix)
    {
        var dir = KernelSpec.KernelsDir(user, prefix);
        var (folder, changed) = KernelSpec.Install(dir);
        Console.WriteLine(changed ? $"installed kernelspec {KernelSpec.Name} (\"{KernelSpec.DisplayName}\") in {folder}"
                                  : $"kernelspec {KernelSpec.Name} already up to date in {folder}");
        if (prefix != null) Console.WriteLine($"Jupyter finds it with JUPYTER_PATH={Path.Combine(Path.GetFullPath(prefix), "share", "jupyter")}");
        return 0;
    }

    public static int Uninstall(bool user, string? prefix)
    {
        var dir = KernelSpec.KernelsDir(user, prefix);
        Console.WriteLine(KernelSpec.Uninstall(dir) ? $"removed {Path.Combine(dir, KernelSpec.Name)}" : $"no kernelspec {KernelSpec.Name} in {dir}");
        return 0;
    }

    public static async Task<int> KernelAsync(string connectionFile, double? timeout, CancellationToken ct)
    {
        ConnectionFile connection;
        try { connection = ConnectionFile.Load(connectionFile); }
        catch (Exception e) when (e is IOException or FormatException or System.Text.Json.JsonException or InvalidOperationException)
        {
            Console.Error.WriteLine($"lab jupyter kernel: cannot read the connection file {connectionFile}: {e.Message}");
            return 2;
        }
        ConsoleRouter.Install();
        var kernel = new JupyterKernel(connection, new KernelOptions
        {
            CellTimeout = timeout is > 0 ? TimeSpan.FromSeconds(timeout.Value) : Timeout.InfiniteTimeSpan,
        });
        // A terminal's Ctrl+C (jupyter console shares the process group) must not kill the kernel: front ends interrupt with interrupt_request.
        Console.CancelKeyPress += (_, e) => e.Cancel = true;
        int code;
        try { code = await kernel.RunAsync(ct); }
        catch (Exception e) when (e is NetMQ.NetMQException or System.Net.Sockets.SocketException || e.GetType().Namespace == "NetMQ")
        {
            Console.Error.WriteLine($"lab jupyter kernel: cannot bind the sockets of {connectionFile} ({connection.Ip}): {e.InnerException?.Message ?? e.Message}");
            return 1;
        }
        NetMQ.NetMQConfig.Cleanup(block: false);
        return code;
    }
}
