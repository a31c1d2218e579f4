# The seed file of the benchmarks (bench/run, bench/scale): `readers` customers holding an
# approved Education and StateOwnedEntity (ids b0000000-0000-4000-8000-<n as 12 hex digits>,
# the ids bench/lua/pcq.lua reads) and `pool` customers holding nothing (ids c0000000-…, the
# ones it requests qualifications for), all of the development partner.
#
#   awk -v readers=1000 -v pool=150000 -f bench/seed.awk > seed.json
BEGIN {
    printf "{\"partners\": [{\"tenantId\": \"dev\", \"customers\": [\n"
    sep = ""
    for (i = 0; i < readers; i++) {
        printf "%s{\"id\": \"b0000000-0000-4000-8000-%012x\", \"companyProfile\": {\"domain\": \"reader-%d.bench.example.edu\", \"companyName\": \"Bench reader %d\"}, \"qualifications\": [{\"qualification\": \"Education\", \"educationSegment\": \"HigherEducation\", \"vettingStatus\": \"Approved\"}, {\"qualification\": \"StateOwnedEntity\"}]}", sep, i, i, i
        sep = ",\n"
    }
    for (i = 0; i < pool; i++) {
        printf "%s{\"id\": \"c0000000-0000-4000-8000-%012x\", \"companyProfile\": {\"domain\": \"pool-%d.bench.example.com\", \"companyName\": \"Bench pool %d\"}}", sep, i, i, i
        sep = ",\n"
    }
    printf "\n]}]}\n"
}
