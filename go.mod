module source-stripe

go 1.24

require (
	github.com/santhosh-tekuri/jsonschema/v5 v5.3.1
	github.com/stripe/stripe-go/v76 v76.25.0
	github.com/stripe/stripe-mock v0.180.0
)

require github.com/spf13/pflag v1.1.0 // indirect
