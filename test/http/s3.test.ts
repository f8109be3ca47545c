import t from 'tap'
import { s3Storage } from '../helpers.js'
import { s3HttpSuite } from './s3-suite.js'

s3HttpSuite(t, s3Storage)
