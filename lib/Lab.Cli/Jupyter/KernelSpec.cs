using System.Text.Json;
using System.Text.Json.Nodes;

namespace Lab.Cli.Jupyter;

/// <summary>
/// The lab's Jupyter kernelspec: a folder <c>kernels/lab-csharp/</c> holding kernel.json (how Jupyter starts the kernel)
/// and a logo, under one of the data folders Jupyter searches (<c>jupyter --paths</c>).
/// </summary>
public static class KernelSpec
{
    public const string Name = "lab-csharp";
    public const string DisplayName = "C# (Backend Accept Lab)";
    public const string Language = "C#";

    /// <summary>Where <c>--user</c> installs: $JUPYTER_DATA_DIR, else $XDG_DATA_HOME/jupyter, else ~/.local/share/jupyter (jupyter_core's user data dir on Linux).</summary>
    public static string UserDataDir()
    {
        if (Environment.GetEnvironmentVariable("JUPYTER_DATA_DIR") is { Length: > 0 } d) return d;
        if (Environment.GetEnvironmentVariable("XDG_DATA_HOME") is { Length: > 0 } x) return Path.Combine(x, "jupyter");
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share", "jupyter");
    }

    /// <summary>The system-wide data folder Jupyter searches first (jupyter_core's SYSTEM_JUPYTER_PATH[0] on Debian).</summary>
    public const string SystemDataDir = "/usr/local/share/jupyter";

    /// <summary>
    /// The kernels folder for the flags: <c>--prefix DIR</c> → DIR/share/jupyter/kernels; <c>--user</c> → the user data
    /// dir; neither → the system folder when running as root, else the user's.
    /// </summary>
    public static string KernelsDir(bool user, string? prefix)
    {
        if (prefix != null) return Path.Combine(Path.GetFullPath(prefix), "share", "jupyter", "kernels");
        if (user || Environment.UserName != "root") return Path.Combine(UserDataDir(), "kernels");
        return Path.Combine(SystemDataDir, "kernels");
    }

    /// <summary>kernel.json: argv runs this build's Lab.Cli.dll with absolute paths, so the kernel starts from any folder.</summary>
    public static JsonObject KernelJson(string dotnet, string cliDll) => new()
    {
        ["argv"] = new JsonArray(dotnet, cliDll, "jupyter", "kernel", "--connection-file", "{connection_file}"),
        ["display_name"] = DisplayName,
        ["language"] = Language,
        ["interrupt_mode"] = "message",
        ["env"] = new JsonObject { ["DOTNET_NOLOGO"] = "1", ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" },
        ["metadata"] = new JsonObject
        {
            ["debugger"] = false,
            ["lab"] = new JsonObject { ["cli"] = cliDll, ["protocol_version"] = JupyterMessage.ProtocolVersion },
        },
    };

    /// <summary>The dotnet host running this process (absolute), else the one on PATH.</summary>
    public static string DotnetPath()
    {
        var p = Environment.ProcessPath;
        if (p != null && Path.GetFileNameWithoutExtension(p) == "dotnet") return p;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var c = Path.Combine(dir, "dotnet");
            if (File.Exists(c)) return c;
        }
        return "/usr/bin/dotnet";
    }

    public static string CliDll() => typeof(KernelSpec).Assembly.Location;

    const string Logo = """
        <svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
          <rect width="64" height="64" rx="10" fill="#512bd4"/>
          <text x="32" y="30" font-family="sans-serif" font-size="22" font-weight="bold" fill="#fff" text-anchor="middle">C#</text>
          <text x="32" y="52" font-family="sans-serif" font-size="11" fill="#fff" text-anchor="middle">accept</text>
        </svg>
        """;

    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Writes the kernelspec; files already holding the same content are left untouched. Returns the folder and whether anything changed.</summary>
    public static (string Folder, bool Changed) Install(string kernelsDir, string? dotnet = null, string? cliDll = null)
    {
        var folder = Path.Combine(kernelsDir, Name);
        Directory.CreateDirectory(folder);
        var changed = false;
        changed |= WriteIfDifferent(Path.Combine(folder, "kernel.json"), KernelJson(dotnet ?? DotnetPath(), cliDll ?? CliDll()).ToJsonString(Indented) + "\n");
        changed |= WriteIfDifferent(Path.Combine(folder, "logo-svg.svg"), Logo + "\n");
        return (folder, changed);
    }

    /// <summary>Removes the kernelspec folder. Returns false when there was none.</summary>
    public static bool Uninstall(string kernelsDir)
    {
        var folder = Path.Combine(kernelsDir, Name);
        if (!Directory.Exists(folder)) return false;
        Directory.Delete(folder, recursive: true);
        return true;
    }

    static bool WriteIfDifferent(string path, string content)
    {
        if (File.Exists(path) && File.ReadAllText(path) == content) return false;
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, content);
        File.Move(tmp, path, overwrite: true);
        return true;
    }
}
