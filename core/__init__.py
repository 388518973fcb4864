"""The ground floor: settings, the working-day calendar, time parsing, safe file and YAML reading,
the error types and the zh-CN messages. It imports nothing of the project."""
