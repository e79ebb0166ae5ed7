#define BOOST_TEST_MODULE upload
#include <boost/test/unit_test.hpp>
