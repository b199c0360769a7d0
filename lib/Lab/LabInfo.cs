namespace Lab;

/// <summary>Where the library was loaded from; notebooks and the engine use it to find the library's folder.</summary>
public static class LabInfo
{
    /// <summary>The folder holding Lab.dll and its dependency DLLs.</summary>
    public static string Folder => Path.GetDirectoryName(typeof(LabInfo).Assembly.Location)!;
}
