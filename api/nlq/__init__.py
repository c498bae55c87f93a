"""Natural-language queries: the SQL guard, the model that writes SQL, and the chat assistant."""
