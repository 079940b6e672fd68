package catalog

// Regenerate schemas/*.json and streams/endpoints_gen.go from Stripe's OpenAPI description.
//go:generate go run ../internal/openapigen -schemas schemas -endpoints ../streams/endpoints_gen.go
